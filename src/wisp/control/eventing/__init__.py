"""Eventing reconcilers, one per kind (kafka_source, broker, trigger, ping_source, sink_binding), with their pure
builders (builders.py); what they share is in base.py and pieces.py, and assembly.py builds them for the daemon."""
