"""`wisp build`'s own checks: the export's index is trusted only inside the export, and an image built without
deps/ filled, or whose Python is not the one deps/ was filled for, fails at its first step saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import oci_images
from tests.export.conftest import EXAMPLES, REGISTRY
from wisp.export import build
from wisp.export.export import export
from wisp.export.options import ExportOptions

OPTIONS = ExportOptions.parse(REGISTRY, None, None, None, [])


@pytest.mark.parametrize("context", ["../../elsewhere", "/etc", "build/../.."])
def test_an_index_pointing_outside_the_export_is_refused(tmp_path: Path, context: str) -> None:
    out = tmp_path / "out"
    export([EXAMPLES[1]], out, OPTIONS)
    index = out / "build" / "index.json"
    entries = json.loads(index.read_text())
    entries[0]["context"] = context
    index.write_text(json.dumps(entries))
    with pytest.raises(build.BuildError, match="not a directory under"):
        build.contexts(out)


def test_a_malformed_index_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    export([EXAMPLES[1]], out, OPTIONS)
    (out / "build" / "index.json").write_text('[{"name": "x"}]')
    with pytest.raises(build.BuildError, match="not what wisp export writes"):
        build.contexts(out)


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(build.BuildError, match="--engine 'rkt'"):
        build.find_engine("rkt")


@pytest.mark.timeout(600)
def test_a_base_image_with_another_python_is_named_at_the_first_step(tmp_path: Path) -> None:
    env = oci_images.engine_env(oci_images.containers_conf(tmp_path / "conf"))
    engine = oci_images.engine()
    base = oci_images.base_image(env)
    assert build.image_python(engine, base, env) == "3.11"  # Debian bookworm's python3, asked of the image
    out = tmp_path / "out"
    export([EXAMPLES[1]], out, OPTIONS)
    [ctx] = [c for c in build.contexts(out) if c.name == "hello-container"]
    try:
        with pytest.raises(build.BuildError) as caught:  # handed to an engine straight from the export
            build.build_image(engine, ctx, base, env)
        assert "deps/ is empty: run wisp build on the export" in str(caught.value)
        build.install_deps(ctx, "3.12")
        with pytest.raises(build.BuildError) as caught:
            build.build_image(engine, ctx, base, env)
        assert "deps/ holds packages for Python 3.12; this base image has Python 3.11" in str(caught.value)
        build.install_deps(ctx, "3.11")
        build.build_image(engine, ctx, base, env)
    finally:
        oci_images.remove_image(ctx.image, env)
