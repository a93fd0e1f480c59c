"""Eventing: the CloudEvents codec, Knative delivery semantics, and event sources (DESIGN §6)."""
