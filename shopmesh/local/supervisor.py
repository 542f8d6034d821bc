"""Child processes of the local mesh, each in its own process group, and their supervision.

A process group per child means a signal reaches everything the child
started, and Ctrl-C in the terminal reaches only the runner, which then stops
the children in order (apps get their SIGTERM drain). `stop` escalates to
SIGKILL, so nothing the runner started outlives it.

A `Supervisor` restarts a child that exits on its own (a crash, the kernel's
OOM killer, a `kill -9` from another terminal) after a backoff that doubles
with each exit in a row that came soon after a start, so a child that cannot
start does not spin. A child stopped on purpose (`stop_all`, or `held` by
whoever signalled it) stays down until it is started again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Backoff", "Exit", "Process", "Supervisor", "stop_all"]

log = logging.getLogger("shopmesh.local")


@dataclass(frozen=True)
class Exit:
    """How a child ended: its return code (negative: the signal), when, after how long."""

    returncode: int
    at: float  # time.time()
    uptime: float  # seconds since it was started

    def describe(self) -> str:
        if self.returncode < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-self.returncode).name}"
        return f"exit code {self.returncode}"


class Process:
    """One child: its command, environment and log files; startable again after it died."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: pathlib.Path,
        env: Mapping[str, str] | None = None,
        stdout_name: str | None = None,
        cwd: pathlib.Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.log_path = log_dir / f"{name}.log"
        # Envoy writes access logs to stdout and its own log to stderr.
        self.stdout_path = log_dir / stdout_name if stdout_name else self.log_path
        self._popen: subprocess.Popen | None = None
        self._started_at = 0.0
        # Where this run's lines begin in the log, which earlier runs (restarts, a retired
        # replica whose name a new one took) appended to.
        self._log_start = 0
        # Stopped on purpose: a Supervisor leaves it down until start() is called again.
        self.held = False
        self.restarts = 0  # by a Supervisor
        self.last_exit: Exit | None = None

    def start(self) -> Process:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.held = False
        self._started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with (
            open(self.log_path, "ab") as stderr,
            open(self.stdout_path, "ab") as stdout,
        ):
            self._popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
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

    def note_exit(self) -> Exit:
        """Records (as last_exit) how the child ended; call once it is no longer alive."""
        code = self.returncode
        assert code is not None, f"{self.name} has not exited"
        self.last_exit = Exit(code, time.time(), time.monotonic() - self._started_at)
        return self.last_exit

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
        """The last lines the current (or last) run wrote to its log."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(self._log_start)
                text = log_file.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def reap_group(self) -> None:
        """Kills whatever is left in the child's process group (grandchildren)."""
        if self._popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)


def stop_all(processes: Iterable[Process], grace: float) -> None:
    """SIGTERM to all at once, SIGKILL to those still running after `grace` seconds.
    They stay down: a Supervisor does not restart them."""
    processes = list(processes)
    for process in processes:
        process.held = True
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


@dataclass(frozen=True)
class Backoff:
    """How long a Supervisor waits before restarting a child: `initial` seconds, doubled
    for each further exit in a row that came less than `stable` seconds after a start,
    at most `maximum`. A child that ran `stable` seconds starts over at `initial`."""

    initial: float = 0.5
    maximum: float = 30.0
    stable: float = 30.0

    def delay(self, exits_in_a_row: int) -> float:
        return min(self.maximum, self.initial * 2 ** max(0, exits_in_a_row - 1))


# A supervised child and what starts it again (the owner knows its ports and config).
Child = tuple[Process, Callable[[], None]]


class Supervisor:
    """A thread that restarts the children `children()` names when they exit on their own.

    `lock` is the owner's: held while a child is restarted, so that the owner's own
    starts and stops never interleave with a restart. `report` gets one line per
    exit and restart; `changed` is called after each (the owner saves its state).
    """

    def __init__(
        self,
        children: Callable[[], Iterable[Child]],
        lock: threading.RLock,
        *,
        backoff: Backoff | None = None,
        report: Callable[[str], None] = log.info,
        changed: Callable[[], None] = lambda: None,
        interval: float = 0.1,
    ) -> None:
        self._children = children
        self._lock = lock
        self.backoff = backoff or Backoff()
        self._report = report
        self._changed = changed
        self._interval = interval
        self._due: dict[Process, float] = {}  # exited -> when to restart it (monotonic)
        self._exits_in_a_row: dict[Process, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="shopmesh-supervisor", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    def stop(self) -> None:
        """Returns once no restart is under way or will start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:  # a bug here must not end supervision of everything
                log.exception("supervisor: checking the children failed")

    def tick(self) -> None:
        """One look at every child: note new exits, restart those whose backoff is over."""
        with self._lock:
            for process, restart in list(self._children()):
                if self._stop.is_set():
                    return
                if process.alive or process.held or process.pid is None:
                    self._due.pop(process, None)
                    continue
                if process not in self._due:
                    self._exited(process)
                elif time.monotonic() >= self._due[process]:
                    del self._due[process]
                    self._restart(process, restart)

    def _exited(self, process: Process) -> None:
        ended = process.note_exit()
        quick = ended.uptime < self.backoff.stable
        in_a_row = self._exits_in_a_row.get(process, 0) + 1 if quick else 1
        self._exits_in_a_row[process] = in_a_row
        delay = self.backoff.delay(in_a_row)
        self._due[process] = time.monotonic() + delay
        self._report(
            f"{process.name} exited ({ended.describe()}) after {ended.uptime:.1f} s;"
            f" restarting it in {delay:g} s"
        )
        self._changed()

    def _restart(self, process: Process, restart: Callable[[], None]) -> None:
        try:
            restart()
        except Exception as error:  # noticed as exited again, with a longer backoff
            self._report(f"{process.name} did not restart: {str(error)[:300]}")
        else:
            process.restarts += 1
            self._report(f"{process.name} restarted: pid {process.pid}, {process.restarts} so far")
        self._changed()
