"""Prints each request's `marker` query parameter: what `kubectl logs` must then show."""

import wisp


@wisp.http
def handle(request: wisp.Request) -> dict[str, str]:
    marker = request.query_params.get("marker", "")
    print(f"echo-request {marker}", flush=True)
    return {"marker": marker}
