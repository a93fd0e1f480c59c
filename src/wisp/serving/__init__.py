"""The request path: ingress, throttler/activator, autoscaler and the workloads that serve requests."""
