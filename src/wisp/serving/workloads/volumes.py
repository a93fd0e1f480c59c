"""Kubernetes volumes of a container instance: what they hold (resolved from Secrets and ConfigMaps by the
control layer), written to disk as the kubelet writes them, and mounted into the instance's sandbox.

The kubelet's atomic writer layout, kept here so that a change reaches a running instance all at once: a
volume's directory holds a timestamped directory `..2026_11_30_12_00_00.123456789` with the files, a symlink
`..data` to it, and for each top-level name a symlink `name -> ..data/name`. An update writes a new timestamped
directory, points a temporary symlink at it and renames that over `..data` (one atomic rename), then removes
the old one. An instance reading `name` sees the old files or the new ones, never a mix. A `subPath` mount binds
one file as it was when the instance started, as on Kubernetes (it gets no updates).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Literal

VolumeKind = Literal["configMap", "secret", "projected", "emptyDir"]
DATA_LINK = "..data"
DEFAULT_MODE = 0o644  # Kubernetes' defaultMode


@dataclass(frozen=True)
class VolumeFile:
    path: str  # relative, validated (no "..", not absolute)
    data: bytes
    mode: int = DEFAULT_MODE


@dataclass(frozen=True)
class Volume:
    name: str
    kind: VolumeKind
    # What a Secret or ConfigMap volume holds. Not part of equality: a change is written into the running
    # instances' volume (the kubelet's update), it does not restart them.
    files: tuple[VolumeFile, ...] = field(default=(), compare=False)
    size_limit: int | None = None  # emptyDir: bytes of its tmpfs (None: the tmpfs default, half the RAM)


@dataclass(frozen=True)
class Mount:
    volume: str
    mount_path: str  # absolute (validated at apply)
    read_only: bool = False
    sub_path: str = ""


def safe_relative(path: str) -> bool:
    """A path a volume may hold: relative, without `..` components, not empty (Kubernetes' KeyToPath rules)."""
    if "\x00" in path or path.startswith("/"):
        return False
    parts = PurePosixPath(path).parts
    return bool(parts) and ".." not in parts and not parts[0].startswith("..")


def _stamp(now: float) -> str:
    moment = datetime.fromtimestamp(now, UTC)
    return f"..{moment:%Y_%m_%d_%H_%M_%S}.{int(now * 1e9) % 1_000_000_000:09d}"


def _current(directory: Path) -> dict[str, tuple[bytes, int]] | None:
    """The files the volume's `..data` holds now (None when it has none yet)."""
    data = directory / DATA_LINK
    if not data.is_symlink():
        return None
    found: dict[str, tuple[bytes, int]] = {}
    target = data.resolve()
    for path in target.rglob("*"):
        if path.is_file():
            found[path.relative_to(target).as_posix()] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return found


def write_atomic(directory: Path, files: tuple[VolumeFile, ...], now: float) -> bool:
    """Make `directory` hold exactly `files` with the kubelet's atomic swap; False when it already did."""
    wanted = {f.path: (f.data, f.mode) for f in files}
    if _current(directory) == wanted:
        return False
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    fresh = directory / _stamp(now)
    fresh.mkdir()
    for item in files:
        target = fresh / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(item.data)
        os.chmod(target, item.mode)
    old = (directory / DATA_LINK).resolve() if (directory / DATA_LINK).is_symlink() else None
    temporary = directory / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(fresh.name)
    os.replace(temporary, directory / DATA_LINK)  # the one atomic step
    tops = {PurePosixPath(item.path).parts[0] for item in files}
    for top in tops:
        link = directory / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{top}")
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()  # a key that is gone
    if old is not None and old != fresh.resolve():
        shutil.rmtree(old, ignore_errors=True)
    return True


def sync(root: Path, volumes: tuple[Volume, ...], now: float) -> list[str]:
    """Write every Secret/ConfigMap/projected volume of a revision under `root/<name>`; the names changed."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)  # Secret contents: the daemon's user only, as its state dir
    changed = []
    for volume in volumes:
        if volume.kind != "emptyDir" and write_atomic(root / volume.name, volume.files, now):
            changed.append(volume.name)
    return changed


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def mount_args(root: Path, volumes: tuple[Volume, ...], mounts: tuple[Mount, ...]) -> list[str]:
    """bubblewrap arguments mounting each volumeMount: a Secret/ConfigMap volume's directory (or one file of it
    for a subPath) bound at its mountPath, read-only unless asked otherwise; an emptyDir a tmpfs of its size."""
    by_name = {v.name: v for v in volumes}
    args: list[str] = []
    for mount in sorted(mounts, key=lambda m: m.mount_path.count("/")):  # parents before what is inside them
        volume = by_name[mount.volume]
        if volume.kind == "emptyDir":
            if volume.size_limit is not None:
                args += ["--size", str(volume.size_limit)]
            args += ["--perms", "1777", "--tmpfs", mount.mount_path]
            if mount.read_only:
                args += ["--remount-ro", mount.mount_path]
            continue
        source = root / volume.name
        if mount.sub_path:
            source = (source / mount.sub_path).resolve()  # the file as it is now: a subPath gets no updates
        args += ["--ro-bind" if mount.read_only else "--bind", str(source), mount.mount_path]
    return args


def engine_args(root: Path, volumes: tuple[Volume, ...], mounts: tuple[Mount, ...]) -> list[str]:
    """The container engine's flags for the same mounts: `-v` of the volume's directory (or one file of it for
    a subPath), read-only unless asked otherwise, and `--tmpfs` of its size for an emptyDir."""
    by_name = {v.name: v for v in volumes}
    args: list[str] = []
    for mount in sorted(mounts, key=lambda m: m.mount_path.count("/")):
        volume = by_name[mount.volume]
        if volume.kind == "emptyDir":
            options = ["rw" if not mount.read_only else "ro", "mode=1777"]
            if volume.size_limit is not None:
                options.append(f"size={volume.size_limit}")
            args.append(f"--tmpfs={mount.mount_path}:{','.join(options)}")
            continue
        source = root / volume.name
        if mount.sub_path:
            source = (source / mount.sub_path).resolve()
        args.append(f"--volume={source}:{mount.mount_path}:{'ro' if mount.read_only else 'rw'}")
    return args
