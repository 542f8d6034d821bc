"""Child processes run in their own process group and stop, with everything they started."""

import os
import signal
import sys
import time

from shopmesh.local.supervisor import Process, stop_all

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
