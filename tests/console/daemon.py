"""A real wisp daemon for the console's browser tests and benchmark: `wisp.daemon.run` in a subprocess on free
ports, its output in a log file, stopped with SIGTERM."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from wisp.net import free_port

LAUNCH = """
import sys
from pathlib import Path
from wisp.daemon import DaemonOptions, run
paths = [Path(p) for p in sys.argv[4:]]
sys.exit(run(DaemonOptions(paths=paths, port=int(sys.argv[1]), api_port=int(sys.argv[2]), state_dir=Path(sys.argv[3]),
                           ready_timeout=90, max_instances=int(__import__("os").environ.get("WISP_TEST_MAX", "64")))))
"""


class Daemon:
    def __init__(self, state_dir: Path, manifests: list[Path], log: Path, env: dict[str, str] | None = None) -> None:
        self.port, self.api_port = free_port(), free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(self.port), str(self.api_port), str(state_dir), *map(str, manifests)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_serving(self, timeout: float = 120.0) -> None:
        """Until the daemon prints that it serves (its Services are Ready or failed); copies output to the log."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        with self.log.open("ab") as out:
            while time.monotonic() < deadline:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    break
                line = self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"the daemon exited with {self.process.wait()}; see {self.log}")
                out.write(line)
                if line.startswith(b"wisp is serving on"):
                    self._drain_in_background()
                    return
        raise AssertionError(f"the daemon did not start in {timeout} s; see {self.log}")

    def _drain_in_background(self) -> None:
        """Keep reading its output into the log, so a full pipe never blocks the daemon."""
        import threading

        def copy() -> None:
            assert self.process.stdout is not None
            with self.log.open("ab") as out:
                for line in self.process.stdout:
                    out.write(line)
                    out.flush()

        threading.Thread(target=copy, daemon=True).start()

    def stop(self, timeout: float = 40.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
