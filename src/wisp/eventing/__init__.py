"""Eventing: the CloudEvents codec, Knative delivery semantics, and event sources.

The semantics are in architecture.md: eventing semantics.
"""
