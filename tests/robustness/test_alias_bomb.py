"""YAML that expands without limit is refused at once, with a clear error, wherever manifests are read.

A nine-level "billion laughs" is a few hundred bytes; expanded it is 10**9 nodes. PyYAML shares an aliased
node between its uses, so the damage happens later, in whatever walks the result. The loader measures the
composed graph instead and refuses it before anything is built. Each test measures its own time (no
sleeps) and carries a timeout, so a regression fails rather than hangs the suite.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wisp.api import bounded_yaml
from wisp.api.errors import ManifestError
from wisp.api.loader import load_paths, load_text
from wisp.cli.main import make_app

pytestmark = pytest.mark.timeout(20)

FAST = 0.5  # seconds: "well under a second", on a loaded CI machine too (an alias bomb takes ~2 ms)
PARSE = 1.0  # seconds, for bounds found only by parsing up to them (deep nesting, document count): ~0.2 s


def laughs(levels: int = 9, width: int = 10) -> str:
    """A ConfigMap whose data holds the classic exponential alias chain."""
    lines = [f'  a0: &a0 [{", ".join(["lol"] * width)}]']
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n" + "\n".join(lines) + "\n"


def refused_quickly(
    load: Callable[[], object], *, measure_memory: bool = False, budget: float = FAST
) -> ManifestError:
    """Run `load`, which must raise ManifestError within `budget` seconds (and, measured apart, a few MB)."""
    started = time.perf_counter()
    with pytest.raises(ManifestError) as info:
        load()
    elapsed = time.perf_counter() - started
    assert elapsed < budget, f"took {elapsed:.2f}s"
    if measure_memory:  # apart: tracing allocations slows the parser several times over
        tracemalloc.start()
        try:
            with pytest.raises(ManifestError):
                load()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 20 * 1024 * 1024, f"peak allocation {peak / 1e6:.0f} MB"
    return info.value


def test_billion_laughs_is_refused_at_once() -> None:
    error = refused_quickly(lambda: load_text(laughs()), measure_memory=True)
    assert "aliases expand" in str(error)
    assert str(bounded_yaml.MAX_ALIAS_EXPANSION) in str(error)


def test_billion_laughs_in_a_file(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    error = refused_quickly(lambda: load_paths([tmp_path]))
    assert str(bomb) in error.where


def test_merge_keys_bomb() -> None:
    lines = ["  m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}"]
    for i in range(1, 9):
        lines.append(f"  m{i}: &m{i} [" + ", ".join([f"{{<<: *m{i - 1}}}"] * 10) + "]")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n" + "\n".join(lines)
    refused_quickly(lambda: load_text(text), measure_memory=True)


def test_many_flat_aliases_add_up() -> None:
    # Linear, not exponential: 2,000 aliases of a 10-item list still add 22,000 nodes, over the budget.
    body = "\n".join(f"  k{i}: *a" for i in range(2000))
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    text = f"{head}shared: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\ndata:\n{body}"
    refused_quickly(lambda: load_text(text))


def test_the_budget_spans_documents() -> None:
    # Anchors do not cross documents, but the budget does: many small documents add up like one big one.
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    doc = f"{head}x: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\ny: [*a, *a, *a, *a]\n"
    assert load_text("---\n".join([doc] * 10))  # 400 nodes from aliases: fine
    error = refused_quickly(lambda: load_text("---\n".join([doc] * 400)), budget=PARSE)  # 16,000: not
    assert "aliases expand" in str(error)


def test_a_recursive_alias_is_refused() -> None:
    error = refused_quickly(lambda: load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &a [*a]\n"))
    assert "contains it" in str(error)


def test_deep_nesting_is_refused() -> None:
    refused_quickly(lambda: load_text("a: " + "[" * 100_000), budget=PARSE)
    refused_quickly(lambda: load_text("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(200))), budget=PARSE)


def test_aliases_can_deepen_a_document_past_the_bound() -> None:
    inner = "[" * 40 + "1" + "]" * 40
    text = f"a: &a {inner}\nb: &b {'[' * 30}*a{']' * 30}\n"
    assert "levels deep" in str(refused_quickly(lambda: load_text(text), budget=PARSE))


def test_too_many_documents_or_bytes() -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    assert "documents" in str(refused_quickly(lambda: load_text("---\n".join([doc] * 1001)), budget=PARSE))
    huge = doc + "data:\n  big: " + "x" * bounded_yaml.MAX_TEXT_BYTES + "\n"
    assert "larger than" in str(refused_quickly(lambda: load_text(huge)))


def test_a_huge_file_is_not_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        out.truncate(1024 * 1024 * 1024)  # sparse: 1 GiB of NULs, none of it in memory
    assert "larger than" in str(refused_quickly(lambda: load_paths([big])))


def test_ordinary_anchors_still_work() -> None:
    text = """
apiVersion: v1
kind: List
items:
  - apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: hello}
    spec:
      template:
        spec:
          containers:
            - image: ./app
              env: &env
                - {name: A, value: "1"}
                - {name: B, value: "2"}
  - apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: hello2}
    spec:
      template:
        spec:
          containers:
            - image: ./app
              env: *env
"""
    first, second = load_text(text)
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert first.resource["spec"]["template"]["spec"]["containers"][0]["env"] == env
    assert second.resource["spec"]["template"]["spec"]["containers"][0]["env"] == env


def test_the_cli_refuses_a_bomb_before_calling_the_daemon(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    started = time.perf_counter()
    # Port 9 (discard) has no daemon: the CLI must fail on the file, not on the connection.
    result = CliRunner().invoke(make_app(), ["--api", "http://127.0.0.1:9", "apply", "-f", str(bomb)])
    assert time.perf_counter() - started < FAST
    assert result.exit_code != 0
    assert "aliases expand" in result.output
