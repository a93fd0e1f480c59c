"""The kubelet's atomic writer layout for Secret/ConfigMap volumes, Kubernetes' quantity grammar, and the
bubblewrap arguments a revision's mounts become."""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wisp.api.quantity import parse_quantity, to_bytes, to_millicores
from wisp.serving.workloads.volumes import DATA_LINK, Mount, Volume, VolumeFile, mount_args, safe_relative, write_atomic


def listing(directory: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in directory.iterdir() if p.is_symlink()}


def test_layout_update_and_removal(tmp_path: Path) -> None:
    volume = tmp_path / "v"
    assert write_atomic(volume, (VolumeFile("a", b"1"), VolumeFile("dir/b", b"2", 0o600)), now=1000.0)
    assert listing(volume) == {DATA_LINK: "..1970_01_01_00_16_40.000000000", "a": "..data/a", "dir": "..data/dir"}
    assert (volume / "a").read_bytes() == b"1" and (volume / "dir" / "b").read_bytes() == b"2"
    assert (volume / "dir" / "b").stat().st_mode & 0o777 == 0o600 and (volume / "a").stat().st_mode & 0o777 == 0o644
    assert not write_atomic(volume, (VolumeFile("a", b"1"), VolumeFile("dir/b", b"2", 0o600)), now=2000.0)
    held = (volume / "a").open("rb")  # a reader of the old file keeps reading the old file
    assert write_atomic(volume, (VolumeFile("a", b"new"),), now=3000.0)
    assert (volume / "a").read_bytes() == b"new" and not (volume / "dir").exists()
    assert held.read() == b"1"
    held.close()
    stamped = [p.name for p in volume.iterdir() if p.name.startswith("..") and p.name != DATA_LINK]
    assert len(stamped) == 1, stamped  # the old timestamped directory is gone


def test_an_empty_volume_has_only_its_data_link(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / "v", (), now=1.0)
    names = sorted(p.name for p in (tmp_path / "v").iterdir())
    assert names[1:] == [DATA_LINK] and names[0].startswith("..1970")


@given(st.text(max_size=40))
def test_safe_relative_never_lets_a_path_out(path: str) -> None:
    if safe_relative(path):
        resolved = Path("/base", path).resolve()
        assert str(resolved).startswith("/base/") or resolved == Path("/base")
        assert not path.startswith("/")


def test_mount_args() -> None:
    volumes = (Volume("cm", "configMap"), Volume("tmp", "emptyDir", size_limit=1024))
    mounts = (Mount("cm", "/etc/app", read_only=True), Mount("tmp", "/scratch"), Mount("cm", "/x/y/z", True))
    assert mount_args(Path("/root"), volumes, mounts) == [  # shallower mountPaths first
        "--size", "1024", "--perms", "1777", "--tmpfs", "/scratch", "--ro-bind", "/root/cm", "/etc/app",
        "--ro-bind", "/root/cm", "/x/y/z"]


@pytest.mark.parametrize(("text", "value"), [
    ("128Mi", Fraction(128 * 2**20)), ("500m", Fraction(1, 2)), ("1.5G", Fraction(1_500_000_000)),
    ("1e3", Fraction(1000)), ("0.1", Fraction(1, 10)), (".5", Fraction(1, 2)), (2, Fraction(2)),
    ("1Ki", Fraction(1024)),
])
def test_quantities(text: object, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Mi", "1.2.3", "12 Mi", "1Q", True, None, "x" * 100])
def test_bad_quantities(text: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


@given(st.text(max_size=20))
def test_any_text_parses_or_is_refused(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_quantity(text) >= 0 or text.strip().startswith("-")


def test_rounding() -> None:
    assert to_bytes("1.5") == 2 and to_millicores("0.0001") == 1 and to_millicores("250m") == 250
