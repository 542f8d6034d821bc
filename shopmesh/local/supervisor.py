"""Child processes of the local mesh, each in its own process group.

A process group per child means a signal reaches everything the child
started, and Ctrl-C in the terminal reaches only the runner, which then stops
the children in order (apps get their SIGTERM drain). `stop` escalates to
SIGKILL, so nothing the runner started outlives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Process", "stop_all"]

log = logging.getLogger("shopmesh.local")


class Process:
    """One child: its command, environment and log files; startable again after it died."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: pathlib.Path,
        env: Mapping[str, str] | None = None,
        stdout_name: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.log_path = log_dir / f"{name}.log"
        # Envoy writes access logs to stdout and its own log to stderr.
        self.stdout_path = log_dir / stdout_name if stdout_name else self.log_path
        self._popen: subprocess.Popen | None = None

    def start(self) -> Process:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with (
            open(self.log_path, "ab") as stderr,
            open(self.stdout_path, "ab") as stdout,
        ):
            self._popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        log.debug("started %s (pid %s): %s", self.name, self._popen.pid, " ".join(self.argv))
        return self

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def signal(self, signum: int) -> None:
        """Sends `signum` to the child's whole process group."""
        if self._popen is None or self._popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signum)

    def wait(self, timeout: float) -> bool:
        """True when the child has exited within `timeout` seconds."""
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def reap_group(self) -> None:
        """Kills whatever is left in the child's process group (grandchildren)."""
        if self._popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)


def stop_all(processes: Iterable[Process], grace: float) -> None:
    """SIGTERM to all at once, SIGKILL to those still running after `grace` seconds."""
    running = [p for p in processes if p.alive]
    for process in running:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        if not process.wait(max(0.0, deadline - time.monotonic())):
            log.warning("%s did not stop within %.1fs: killing it", process.name, grace)
            process.signal(signal.SIGKILL)
            process.wait(5)
    for process in running:
        process.reap_group()
