"""Reconcilers: one per kind, turning stored spec into running state and reporting status."""
