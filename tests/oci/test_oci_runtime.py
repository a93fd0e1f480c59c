"""The OCI runtime on its own, with podman: the runtime contract as local processes have it (tests/workloads),
Kubernetes' command/args/workingDir/securityContext rules, pull policies and the engine's errors."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.oci_images import build_image, engine, remove_image
from wisp.net import free_port
from wisp.serving.workloads import ContainerEngines, OciOptions, Probe, WorkloadError, WorkloadSpec
from wisp.serving.workloads.oci import OciInstance, OciRuntime
from wisp.serving.workloads.oci_engine import DAEMON_LABEL

CONTRACT_ENV = {"K_SERVICE": "hello", "K_CONFIGURATION": "hello", "K_REVISION": "hello-00001"}
HOST_ONLY = {"PATH": "/host/only/bin", "HOME": "/host/home"}


def oci_spec(image: str, **overrides: object) -> WorkloadSpec:
    values: dict[str, object] = {
        "revision": "hello-00001", "namespace": "default", "workload_class": "container", "directory": None,
        "image": image, "env": {**CONTRACT_ENV, **HOST_ONLY, "GREETING": "hi"},
        "host_env": frozenset(HOST_ONLY), "timeout_seconds": 10,
    }
    values.update(overrides)
    return WorkloadSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
async def engines(tmp_path: Path, oci_env: dict[str, str]) -> ContainerEngines:
    return ContainerEngines(tmp_path / "state", "auto", oci_env)


@pytest.fixture
async def instances(engines: ContainerEngines, oci_env: dict[str, str]) -> AsyncIterator[list[OciInstance]]:
    """Instances the test started; killed when it ends, pass or fail, and then none of their containers left."""
    made: list[OciInstance] = []
    yield made
    for instance in made:
        instance.kill()
    await asyncio.gather(*(i.exited for i in made), return_exceptions=True)
    if left := await asyncio.to_thread(running, oci_env, engines.label):
        await asyncio.to_thread(subprocess.run, [engine(), "rm", "-f", "-t", "0", *left], env=oci_env, timeout=60)
        pytest.fail(f"containers left behind: {left}")


async def spawn(runtime: OciRuntime, made: list[OciInstance], tmp_path: Path,
                name: str = "hello-00001-deployment-a1b2c") -> OciInstance:
    instance = await runtime.spawn(name, free_port(), tmp_path / "logs" / f"{name}.log")
    made.append(instance)
    return instance


async def get(instance: OciInstance, path: str = "/") -> dict[str, object]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"http://127.0.0.1:{instance.port}{path}")
    assert r.status_code == 200, r.text
    result: dict[str, object] = r.json()
    return result


def running(env: dict[str, str], label: str) -> list[str]:
    out = subprocess.run([engine(), "ps", "-a", "--format", "{{.Names}}", "--filter", f"label={DAEMON_LABEL}={label}"],
                         env=env, capture_output=True, text=True, check=True, timeout=60).stdout
    return out.split()


async def test_serves_the_contract_env_logs_and_drains_on_sigterm(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path,
        oci_env: dict[str, str]) -> None:
    runtime = OciRuntime(oci_spec(server_image, env={**CONTRACT_ENV, **HOST_ONLY, "DB_PASSWORD": "s3cret-value"}),
                         engines)
    await runtime.start()
    digest = runtime.image_digest
    assert digest is not None and digest.startswith("localhost/wisp-test-oci-server@sha256:")
    instance = await spawn(runtime, instances, tmp_path)
    await instance.wait_ready(30)
    seen = await get(instance)
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["PORT"] == str(instance.port)
    assert {k: env[k] for k in CONTRACT_ENV} == CONTRACT_ENV and env["DB_PASSWORD"] == "s3cret-value"
    # The image's own PATH and HOME, not the daemon's.
    assert env["PATH"] != HOST_ONLY["PATH"] and env.get("HOME") != HOST_ONLY["HOME"]
    assert "CONTAINERS_CONF" not in env
    assert seen["argv"] == ["python3", "/app/serve.py", "from-image-cmd"] and seen["cwd"] == "/app"
    # A Secret's value never on a command line (`ps` shows those to every user).
    cmdline = await asyncio.to_thread(Path(f"/proc/{instance.pid}/cmdline").read_bytes)
    assert b"s3cret-value" not in cmdline and b"DB_PASSWORD" not in cmdline
    assert instance.container in await asyncio.to_thread(running, oci_env, engines.label)
    await instance.terminate(grace=8)
    assert instance.exited.result() == 0
    log = instance.log_path.read_text()
    assert f"serving on {instance.port}" in log and "draining on SIGTERM" in log
    assert instance.container not in await asyncio.to_thread(running, oci_env, engines.label)
    assert engines.env_dir.stat().st_mode & 0o777 == 0o700
    assert not list(engines.env_dir.iterdir()), "the env file outlived its instance"


async def test_command_and_args_as_kubernetes_has_them(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path) -> None:
    cases = [
        ({"args": ["a1", "a 2"]}, ["python3", "/app/serve.py", "a1", "a 2"]),  # args replace the image's cmd
        ({"command": ["python3", "-X", "utf8", "/app/serve.py"]},  # command replaces entrypoint and cmd
         ["python3", "-X", "utf8", "/app/serve.py"]),
        ({"command": ["python3"], "args": ["/app/serve.py", "x"]}, ["python3", "/app/serve.py", "x"]),
    ]
    runtimes = [OciRuntime(oci_spec(server_image, **overrides), engines) for overrides, _ in cases]  # type: ignore[arg-type]
    for runtime in runtimes:
        await runtime.start()
    started = [await spawn(r, instances, tmp_path, f"hello-00001-deployment-c{i}") for i, r in enumerate(runtimes)]
    await asyncio.gather(*(i.wait_ready(30) for i in started))
    for instance, (_, argv) in zip(started, cases, strict=True):
        assert (await get(instance))["argv"] == argv


async def test_working_dir_user_group_and_read_only_root(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path) -> None:
    oci = OciOptions(working_dir="/tmp", run_as_user=1234, run_as_group=2345, read_only_root=True,
                     no_new_privileges=True, cap_drop=("ALL",))
    runtime = OciRuntime(oci_spec(server_image, oci=oci), engines)
    await runtime.start()
    instance = await spawn(runtime, instances, tmp_path)
    await instance.wait_ready(30)
    seen = await get(instance, "/make-ready")  # writes /tmp/ready: /tmp stays writable with a read-only root
    assert (seen["cwd"], seen["uid"], seen["gid"]) == ("/tmp", 1234, 2345)


async def test_run_as_non_root_is_checked_against_the_image(engines: ContainerEngines, server_image: str) -> None:
    with pytest.raises(WorkloadError, match=r"runAsNonRoot and image \S+ will run as root"):
        await OciRuntime(oci_spec(server_image, oci=OciOptions(run_as_non_root=True)), engines).start()
    await OciRuntime(oci_spec(server_image, oci=OciOptions(run_as_non_root=True, run_as_user=1000)), engines).start()


async def test_http_get_probe_waits_for_a_2xx(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path) -> None:
    runtime = OciRuntime(oci_spec(server_image, probe=Probe(http_path="/healthz")), engines)
    await runtime.start()
    instance = await spawn(runtime, instances, tmp_path)
    with pytest.raises(WorkloadError, match="not ready"):
        await instance.wait_ready(3)  # serving, but /healthz answers 503
    await get(instance, "/make-ready")
    await instance.wait_ready(20)


async def test_a_command_exiting_at_once_is_a_clear_error(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path) -> None:
    spec = oci_spec(server_image, command=["python3", "-c", "print('missing DATABASE_URL'); raise SystemExit(3)"])
    runtime = OciRuntime(spec, engines)
    await runtime.start()
    instance = await spawn(runtime, instances, tmp_path)
    with pytest.raises(WorkloadError) as info:
        await instance.wait_ready(30)
    assert "exited with status 3" in str(info.value) and "missing DATABASE_URL" in str(info.value)


async def test_kill_removes_the_container(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path,
        oci_env: dict[str, str]) -> None:
    runtime = OciRuntime(oci_spec(server_image, command=["sleep", "600"]), engines)
    await runtime.start()
    instance = await spawn(runtime, instances, tmp_path)
    for _ in range(200):  # nothing listens, so no probe: poll the engine until the container runs
        if instance.container in await asyncio.to_thread(running, oci_env, engines.label):
            break
        await asyncio.sleep(0.05)
    instance.kill()
    assert await asyncio.wait_for(instance.exited, 30) == -9
    assert instance.container not in await asyncio.to_thread(running, oci_env, engines.label)


async def test_pull_policies_and_engine_errors(engines: ContainerEngines, server_image: str) -> None:
    missing = "localhost/wisp-test-no-such-image:1"
    with pytest.raises(WorkloadError, match=f'Container image "{missing}" is not present with pull policy of Never'):
        await OciRuntime(oci_spec(missing, oci=OciOptions(pull_policy="Never")), engines).start()
    with pytest.raises(WorkloadError) as info:
        await OciRuntime(oci_spec(missing), engines).start()  # IfNotPresent: a pull, which fails here
    assert f'Unable to fetch image "{missing}"' in str(info.value) and "localhost" in str(info.value)
    # Always pulls even what is present locally; with no registry reachable that fails and says so.
    with pytest.raises(WorkloadError, match=f'Unable to fetch image "{server_image}"'):
        await OciRuntime(oci_spec(server_image, oci=OciOptions(pull_policy="Always")), engines).start()
    # Never with a local image: runs it, no pull.
    await OciRuntime(oci_spec(server_image, oci=OciOptions(pull_policy="Never")), engines).start()


async def test_a_pinned_digest_runs_that_image_even_after_the_tag_moved(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path,
        oci_env: dict[str, str]) -> None:
    tag = "localhost/wisp-test-oci-moving:1"
    await asyncio.to_thread(subprocess.run, [engine(), "tag", server_image, tag], env=oci_env, check=True, timeout=60)
    first = OciRuntime(oci_spec(tag), engines)
    await first.start()
    pinned = first.image_digest
    assert pinned is not None and pinned.startswith("localhost/wisp-test-oci-moving@sha256:")
    try:
        exits = 'FROM {base}\nCMD ["python3", "-c", "raise SystemExit(7)"]\n'
        await asyncio.to_thread(build_image, tag, {"Containerfile": exits}, oci_env)
        later = OciRuntime(oci_spec(tag, oci=OciOptions(pinned=pinned)), engines)
        await later.start()
        assert later.image_digest == pinned
        instance = await spawn(later, instances, tmp_path)
        await instance.wait_ready(30)  # the server image, not the one the tag names now
    finally:
        await asyncio.to_thread(remove_image, tag, oci_env)


async def test_no_engine_says_why(tmp_path: Path) -> None:
    nothing = ContainerEngines(tmp_path / "state", "auto", {"PATH": str(tmp_path / "empty")})
    with pytest.raises(WorkloadError) as info:
        await OciRuntime(oci_spec("docker.io/library/nginx:1.27"), nothing).start()
    assert str(info.value) == ("image docker.io/library/nginx:1.27 needs a container engine (podman or docker); "
                               "none is installed and working: podman is not installed; docker is not installed")


async def test_a_terminate_right_after_the_spawn_leaves_no_container(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path,
        oci_env: dict[str, str]) -> None:
    """A scale-down can reach an instance whose engine client has not started the container yet."""
    runtime = OciRuntime(oci_spec(server_image), engines)
    await runtime.start()
    for delay in (0.0, 0.05, 0.2):
        instance = await spawn(runtime, instances, tmp_path, f"hello-00001-deployment-t{int(delay * 1000)}")
        await asyncio.sleep(delay)
        await asyncio.wait_for(instance.terminate(grace=5), 30)
        assert instance.container not in await asyncio.to_thread(running, oci_env, engines.label), delay


async def test_an_exec_probe_command_runs_in_the_container(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path) -> None:
    runtime = OciRuntime(oci_spec(server_image), engines)
    await runtime.start()
    instance = await spawn(runtime, instances, tmp_path)
    await instance.wait_ready(30)
    assert await instance.run_command(["test", "-f", "/app/serve.py"], 10) == 0  # the image's file system
    assert await instance.run_command(["test", "-f", "/tmp/ready"], 10) == 1
    await get(instance, "/make-ready")
    assert await instance.run_command(["test", "-f", "/tmp/ready"], 10) == 0
    assert await instance.run_command(["sleep", "30"], 1) == -9


async def test_later_instances_are_probed_after_a_share_of_the_fastest_start(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path) -> None:
    runtime = OciRuntime(oci_spec(server_image), engines)
    await runtime.start()
    first = await spawn(runtime, instances, tmp_path, "hello-00001-deployment-q1")
    await first.wait_ready(30)
    fastest = runtime.fastest_start
    assert fastest is not None and 0 < fastest < 30
    second = await spawn(runtime, instances, tmp_path, "hello-00001-deployment-q2")
    started = asyncio.get_running_loop().time()
    await second.wait_ready(30)
    assert asyncio.get_running_loop().time() - started >= 0.8 * fastest - 0.01  # ready no sooner than the quiet share
    assert runtime.fastest_start is not None and runtime.fastest_start <= fastest
    env = (await get(second))["env"]
    assert isinstance(env, dict) and env["PORT"] == str(second.port)


async def test_resources_reach_the_engine(
        engines: ContainerEngines, instances: list[OciInstance], server_image: str, tmp_path: Path,
        oci_env: dict[str, str]) -> None:
    oci = OciOptions(memory_limit=64 << 20, cpu_limit_millis=500, cpu_request_millis=250)
    runtime = OciRuntime(oci_spec(server_image, oci=oci), engines)
    await runtime.start()
    instance = await spawn(runtime, instances, tmp_path)
    await instance.wait_ready(30)
    out = await asyncio.to_thread(subprocess.run, [engine(), "container", "inspect", "--format",
                                                   "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} "
                                                   "{{.HostConfig.CpuShares}}", instance.container],
                                  env=oci_env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == [str(64 << 20), "500000000", "256"]
