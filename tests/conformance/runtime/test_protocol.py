"""knative/serving test/conformance/runtime/protocol_test.go: a port named h2c is spoken to in HTTP/2, http1 and
no name in HTTP/1.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch

CASES: dict[str, tuple[dict[str, Any], tuple[int, int]]] = {
    "h2c": ({"ports": [{"name": "h2c"}]}, (2, 0)),
    "http1": ({"ports": [{"name": "http1"}]}, (1, 1)),
    "default": ({}, (1, 1)),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_protocols(tmp_path: Path, target: Target, case: str) -> None:
    container, want = CASES[case]
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "protocols", **container)
        assert (info["request"]["protoMajor"], info["request"]["protoMinor"]) == want
