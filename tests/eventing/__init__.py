"""Eventing tests (a package so test helpers such as `sink` can be imported relatively)."""
