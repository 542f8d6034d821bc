"""Child processes run in their own process group and stop, with everything they started;
a supervisor restarts those that exit on their own, with backoff."""

import itertools
import os
import signal
import sys
import threading
import time

from shopmesh.local.supervisor import Backoff, Process, Supervisor, stop_all

# A child that starts a grandchild, then ignores SIGTERM (or not).
PARENT = """
import signal, subprocess, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: it only waits for its parent to read its status.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _grandchild(process: Process) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = process.log_path.read_text().strip()
        if text:
            return int(text.splitlines()[0])
        time.sleep(0.05)
    raise AssertionError("the child did not start its own child")


def test_stop_reaches_the_whole_process_group(tmp_path):
    process = Process("gentle", [sys.executable, "-c", PARENT, "gentle"], tmp_path).start()
    grandchild = _grandchild(process)
    assert os.getpgid(process.pid) == process.pid != os.getpgid(0)
    stop_all([process], grace=5)
    assert not process.alive
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_a_child_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    process = Process("stubborn", [sys.executable, "-c", PARENT, "stubborn"], tmp_path).start()
    grandchild = _grandchild(process)
    started = time.monotonic()
    stop_all([process], grace=0.5)
    assert time.monotonic() - started < 10
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_a_stopped_process_can_be_started_again(tmp_path):
    process = Process("again", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
    first = process.start().pid
    stop_all([process], grace=5)
    second = process.start().pid
    try:
        assert process.alive and second != first
    finally:
        stop_all([process], grace=5)


def _supervise(
    process: Process, backoff: Backoff, reports: list[str]
) -> tuple[Supervisor, list[float]]:
    """A running supervisor of `process` and the times it restarted it."""
    started: list[float] = []

    def restart() -> None:
        started.append(time.monotonic())
        process.start()

    supervisor = Supervisor(
        lambda: [(process, restart)],
        threading.RLock(),
        backoff=backoff,
        report=reports.append,
        interval=0.01,
    )
    return supervisor.start(), started


def test_a_child_that_keeps_exiting_is_restarted_with_doubling_backoff(tmp_path):
    process = Process("crashy", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path).start()
    reports: list[str] = []
    supervisor, starts = _supervise(process, Backoff(initial=0.2, maximum=0.8, stable=30), reports)
    try:
        deadline = time.monotonic() + 20
        while len(starts) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        supervisor.stop()
        stop_all([process], grace=5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # Each gap is the child's run (a Python start, ~0.05-0.5 s) plus the backoff:
    # 0.4 then 0.8 (the maximum), after a first wait of 0.2.
    assert len(starts) >= 4, reports
    assert gaps[0] >= 0.4 and gaps[1] >= 0.8 and gaps[2] >= 0.8, gaps
    assert process.restarts >= 4
    assert process.last_exit is not None and process.last_exit.returncode == 3
    assert process.last_exit.describe() == "exit code 3"
    assert any("crashy exited (exit code 3)" in line for line in reports)
    assert any("crashy restarted" in line for line in reports)


def test_a_killed_child_is_restarted_and_one_stopped_on_purpose_is_not(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    process = Process("sleepy", sleeper, tmp_path).start()
    reports: list[str] = []
    supervisor, _ = _supervise(process, Backoff(initial=0.05), reports)
    try:
        first = process.pid
        os.kill(first, signal.SIGKILL)  # as the OOM killer or another terminal would
        deadline = time.monotonic() + 10
        while (process.pid == first or not process.alive) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.alive and process.pid != first and process.restarts == 1
        assert process.last_exit is not None
        assert process.last_exit.describe() == "killed by SIGKILL"
        stop_all([process], grace=5)
        time.sleep(0.5)
        assert not process.alive and process.restarts == 1
    finally:
        supervisor.stop()
        stop_all([process], grace=5)


def test_a_log_tail_is_the_running_process_s_own(tmp_path):
    """A new replica can take the name (and so the log file) of one retired before it,
    e.g. the next rollout's first new replica: why it exited is in its own lines only."""
    said = "import sys; print(sys.argv[1], file=sys.stderr); sys.exit(int(sys.argv[2]))"
    before = Process("catalog-2.app", [sys.executable, "-c", said, "serving", "0"], tmp_path)
    assert before.start().wait(20)
    after = Process("catalog-2.app", [sys.executable, "-c", said, "broken", "3"], tmp_path)
    assert after.start().wait(20)
    assert after.log_tail() == "broken"
    assert before.log_path.read_text().split() == ["serving", "broken"]  # the file keeps both
