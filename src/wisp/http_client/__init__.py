"""HTTP plumbing shared by serving and eventing: the pooled HTTP/1.1 client to local instances and sinks.

ASGI's types are Starlette's (`starlette.types`): one contract for every ASGI app in wisp.
"""
