"""The container engine (podman, else docker) as the user runs it, and what wisp asks of it besides `run`:
finding it, resolving an image by its pull policy, and removing the containers a killed daemon left behind.

The engine always runs with the daemon's environment (the user's `CONTAINERS_CONF`, `DOCKER_HOST`, storage and
registries configuration, proxies), never with an instance's: wisp passes no flag that a plain `podman run`
would not get, apart from what its own model needs (see `oci.py`). Containers are labelled with the state dir's
own id, so a daemon started again after `kill -9` removes exactly its predecessor's containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wisp.serving.workloads.types import ContainerMissing, WorkloadError

log = logging.getLogger("wisp.workloads.oci")

ENGINES = ("podman", "docker")
EnginePreference = Literal["auto", "podman", "docker"]
ENGINE_CHECK_TIMEOUT = 15.0
CALL_TIMEOUT = 60.0
PULL_TIMEOUT = 900.0  # a large image over a slow link
MAX_CALL_OUTPUT = 4 * 1024 * 1024  # `image inspect` of one image is a few KiB
MESSAGE_CHARS = 600  # of the engine's error in a Revision's condition

DAEMON_LABEL = "wisp.dev/daemon"
REVISION_LABEL = "wisp.dev/revision"
INSTANCE_LABEL = "wisp.dev/instance"
IMAGE_LABEL = "wisp.dev/image"
# In the state dir: which engine this state dir's daemon used and the label value of its containers; the env
# files of running containers (0600, in a 0700 directory; emptied at start).
STATE_FILE = "containers.json"
ENV_DIR = "container-env"
# Never handed to the engine: the engine may pass its environment on to containers (containers.conf env_host).
PRIVATE_ENV = ("WISP_TOKEN",)

PullPolicy = Literal["IfNotPresent", "Always", "Never"]


@dataclass(frozen=True)
class CallResult:
    status: int
    out: str
    err: str

    def message(self) -> str:
        """The engine's error, short: its last non-empty line of stderr (where podman and docker put it)."""
        lines = [line.strip() for line in self.err.splitlines() if line.strip()]
        text = lines[-1] if lines else f"exit status {self.status}"
        return text[:MESSAGE_CHARS]


@dataclass(frozen=True)
class ImageInfo:
    """What wisp needs to know of a local image."""

    id: str  # what instances run: the exact image, even if the tag moves afterwards
    digest_ref: str | None  # repository@sha256:..., recorded as the Revision's imageDigest
    user: str  # the image's USER ("" = root)


@dataclass(frozen=True)
class Engine:
    """One container engine binary, run with the user's environment."""

    path: str
    kind: Literal["podman", "docker"]
    environ: Mapping[str, str]

    async def call(self, *args: str, timeout: float = CALL_TIMEOUT) -> CallResult:
        """Run `<engine> args...` to completion; a timeout kills it and reads as a failure."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self.path, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(self.environ),
            )
        except OSError as exc:
            return CallResult(127, "", f"cannot run {self.path}: {exc.strerror or exc}")
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return CallResult(-9, "", f"`{self.kind} {args[0]}` did not finish within {timeout:g}s")
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        return CallResult(proc.returncode or 0, out[:MAX_CALL_OUTPUT].decode(errors="replace"),
                          err[-MAX_CALL_OUTPUT:].decode(errors="replace"))

    async def inspect(self, ref: str) -> ImageInfo | None:
        """The local image `ref` names, or None when the engine has no such image."""
        result = await self.call("image", "inspect", "--", ref)  # `--`: a reference is never read as a flag
        if result.status != 0:
            return None
        try:
            data = json.loads(result.out)
            first: dict[str, Any] = data[0]
            image_id = str(first["Id"])
        except (ValueError, LookupError, TypeError):
            raise WorkloadError(f"{self.kind} image inspect {ref}: unexpected output {result.out[:200]!r}") from None
        config = first.get("Config") or {}
        return ImageInfo(id=image_id, digest_ref=_digest_ref(ref, first.get("RepoDigests") or []),
                         user=str(config.get("User") or ""))

    async def pull(self, ref: str) -> CallResult:
        return await self.call("pull", "--", ref, timeout=PULL_TIMEOUT)

    def remove_args(self, *names: str) -> list[str]:
        """`rm` that kills at once: podman's `rm -f` would first wait the container's stop timeout."""
        return ["rm", "-f", "-t", "0", *names] if self.kind == "podman" else ["rm", "-f", *names]

    async def remove(self, *names: str) -> CallResult:
        return await self.call(*self.remove_args(*names))


def _repository(ref: str) -> str:
    """`host/name` of `host/name:tag` or `host/name@sha256:...` (a port in the host is not a tag)."""
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


def _digest_ref(ref: str, repo_digests: list[Any]) -> str | None:
    """The repository@digest the engine recorded for `ref`: the one of the same repository (the engine may
    have qualified a short name, e.g. `nginx` → `docker.io/library/nginx`), else the first one."""
    if "@sha256:" in ref:
        return ref
    digests = [str(d) for d in repo_digests if "@" in str(d)]
    wanted = _repository(ref)
    for digest in digests:
        repository = digest.split("@", 1)[0]
        if repository == wanted or repository.endswith("/" + wanted):
            return digest
    return digests[0] if digests else None


def engine_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the engine runs with: the user's, without wisp's own secrets."""
    return {k: v for k, v in environ.items() if k not in PRIVATE_ENV}


async def _works(path: str, environ: Mapping[str, str]) -> str | None:
    """None when `<engine> info` succeeds, else why it does not."""
    name = Path(path).name
    result = await Engine(path, "docker" if "docker" in name else "podman", environ).call(
        "info", timeout=ENGINE_CHECK_TIMEOUT)
    if result.status == 0:
        return None
    return f"`{name} info` failed ({result.message()})"


async def find_engine(preference: EnginePreference, environ: Mapping[str, str]) -> tuple[Engine | None, list[str]]:
    """The engine to use — the preferred one, or for "auto" the first of podman/docker whose `info`
    succeeds — and why each other one cannot be used."""
    problems: list[str] = []
    candidates = ENGINES if preference == "auto" else (preference,)
    for kind in candidates:
        path = shutil.which(kind, path=environ.get("PATH", os.defpath))
        if path is None:
            problems.append(f"{kind} is not installed")
            continue
        problem = await _works(path, environ)
        if problem is None:
            return Engine(path, "docker" if kind == "docker" else "podman", environ), problems
        problems.append(problem)
    return None, problems


class ContainerEngines:
    """The daemon's link to its container engine: found once (at the first OCI revision), shared by every OCI
    revision, and the owner of the label that marks this state dir's containers."""

    def __init__(self, state_dir: Path, preference: EnginePreference = "auto",
                 environ: Mapping[str, str] | None = None) -> None:
        self.state_file = state_dir / STATE_FILE
        self.env_dir = state_dir / ENV_DIR
        self.preference = preference
        self.environ = engine_environ(os.environ if environ is None else environ)
        self._engine: Engine | None = None
        self._lock = asyncio.Lock()
        self._label: str | None = None

    @property
    def label(self) -> str:
        """This state dir's value of the `wisp.dev/daemon` label (stable across restarts)."""
        if self._label is None:
            recorded = self._recorded()
            self._label = str(recorded.get("label") or secrets.token_hex(8))
        return self._label

    def _recorded(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def engine(self) -> Engine:
        """The engine, found on first use; a WorkloadError saying why when none works (asked again next time:
        the user may install or start one while wisp runs)."""
        async with self._lock:
            if self._engine is None:
                engine, problems = await find_engine(self.preference, self.environ)
                if engine is None:
                    wanted = "podman or docker" if self.preference == "auto" else self.preference
                    raise WorkloadError(f"needs a container engine ({wanted}); none is installed and working: "
                                        f"{'; '.join(problems)}")
                self._record(engine)
                self._engine = engine
            return self._engine

    def _record(self, engine: Engine) -> None:
        """Written before the first container starts: a daemon killed from here on is cleaned up after."""
        wanted = {"engine": engine.path, "kind": engine.kind, "label": self.label}
        if self._recorded() == wanted:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(wanted, f)
        tmp.replace(self.state_file)

    def env_file(self, instance: str) -> Path:
        """Where an instance's env file goes (the directory made private on first use)."""
        self.env_dir.mkdir(mode=0o700, exist_ok=True)
        return self.env_dir / f"{instance}.env"

    async def remove_leftovers(self) -> int:
        """Remove every container an earlier daemon on this state dir left (it was killed, or stopped before
        they were gone), and their env files; how many containers. Calls no engine when no daemon here ever
        ran a container."""
        shutil.rmtree(self.env_dir, ignore_errors=True)
        recorded = self._recorded()
        path, label = recorded.get("engine"), recorded.get("label")
        if not isinstance(path, str) or not isinstance(label, str):
            return 0
        kind: Literal["podman", "docker"] = "docker" if recorded.get("kind") == "docker" else "podman"
        engine = Engine(path, kind, self.environ)
        found = await engine.call("ps", "-a", "-q", "--filter", f"label={DAEMON_LABEL}={label}")
        if found.status != 0:
            log.warning("cannot list the containers an earlier wisp left (%s ps): %s", kind, found.message())
            return 0
        ids = found.out.split()
        if not ids:
            return 0
        removed = await engine.remove(*ids)
        if removed.status != 0:
            log.warning("cannot remove the containers an earlier wisp left (%s): %s", " ".join(ids),
                        removed.message())
        else:
            log.info("removed %d container(s) an earlier wisp on this state dir left running", len(ids))
        return len(ids)


def not_present_message(image: str) -> str:
    return f'Container image "{image}" is not present with pull policy of Never'


async def resolve_image(engine: Engine, image: str, policy: PullPolicy, pinned: str | None) -> ImageInfo:
    """The local image a revision runs, pulled as its policy says (Kubernetes' rules); `pinned` is the
    digest recorded for the revision earlier (it keeps running that image even if the tag moved since)."""
    ref = pinned or image
    if policy == "Always" and pinned is None:
        await _pull(engine, image)
    info = await engine.inspect(ref)
    if info is None:
        if policy == "Never":
            raise ContainerMissing(not_present_message(ref))
        await _pull(engine, ref)
        info = await engine.inspect(ref)
        if info is None:
            raise ContainerMissing(f'Unable to fetch image "{image}": {engine.kind} pulled it, but has no image {ref}')
    return info


async def _pull(engine: Engine, ref: str) -> None:
    result = await engine.pull(ref)
    if result.status != 0:
        raise ContainerMissing(f'Unable to fetch image "{ref}": {result.message()}')
