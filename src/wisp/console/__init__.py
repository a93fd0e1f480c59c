"""The web console: pages, JSON/SSE feeds and vendored static files, served by the daemon at the control API's root.

`routes.console_routes` are mounted through build_api's `extra_routes`; `auth.ConsoleGate` sits in front of the
API app (login page, session cookie → bearer token); `live.LiveHub` feeds the pages from the store's watch and
the running state the daemon passes in (`sources.ConsoleSources`).
"""
