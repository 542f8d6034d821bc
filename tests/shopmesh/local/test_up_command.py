"""`shopmesh up` as a developer runs it: starts everything, serves, and on Ctrl-C leaves nothing."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.timeout(240)
EDGE = re.compile(r"mesh up: edge on (http://127\.0\.0\.1:\d+)")
READY = "Ctrl-C stops everything"  # the last line of the banner


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _processes_using(run_dir: pathlib.Path) -> list[int]:
    """Processes naming the run directory in their command line (Envoy) or
    environment (apps: SHOPMESH_DATA_DIR), other than this test."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if str(run_dir).encode() in (proc / part).read_bytes():
                    found.append(int(proc.name))
                    break
            except OSError:
                continue
    return [pid for pid in found if _alive(pid)]


def _children(run_dir: pathlib.Path) -> list[int]:
    state = json.loads((run_dir / "state.json").read_text())
    pids = [state["edge"]["pid"]]
    for replica in state["replicas"]:
        pids += [replica["app_pid"], replica["sidecar_pid"]]
    return pids


def _up(run_dir: pathlib.Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "shopmesh.cli", "up", "--run-dir", str(run_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _read_until_ready(up: subprocess.Popen, timeout: float) -> tuple[str, list[str]]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert up.stdout is not None
    for line in up.stdout:
        lines.append(line.rstrip())
        if READY in line:
            urls = [m.group(1) for m in map(EDGE.search, lines) if m]
            return urls[0], lines
        if time.monotonic() > deadline:
            break
    raise AssertionError("shopmesh up never got ready:\n" + "\n".join(lines))


def test_up_serves_until_ctrl_c_and_leaves_no_process_behind(tmp_path):
    run_dir = tmp_path / "mesh"
    killed = _up(run_dir, "--port", "0")
    up = None
    try:
        _read_until_ready(killed, timeout=120)
        # A runner killed outright leaves its children; the next `up` stops them.
        killed.kill()
        killed.wait(10)
        orphans = _children(run_dir)
        assert len(orphans) == 1 + 2 * 8 and all(_alive(pid) for pid in orphans)

        up = _up(run_dir, "--port", "0")
        url, printed = _read_until_ready(up, timeout=120)
        assert any("left behind" in line for line in printed)
        assert [pid for pid in orphans if _alive(pid)] == []
        assert any("waiting for" in line for line in printed)
        assert any(line.strip().startswith(f"curl -s {url}/v1/products") for line in printed)
        with urllib.request.urlopen(f"{url}/v1/categories", timeout=10) as response:
            assert response.status == 200
        children = _children(run_dir)
        assert all(_alive(pid) for pid in children)

        up.send_signal(signal.SIGINT)
        rest_of_output, _ = up.communicate(timeout=60)
    finally:
        for runner in (killed, up):
            if runner is not None and runner.poll() is None:
                runner.kill()
                runner.wait()
    assert up.returncode == 0, rest_of_output
    assert "stopped" in rest_of_output
    assert [pid for pid in children if _alive(pid)] == []
    assert _processes_using(run_dir) == []
    assert not (run_dir / "state.json").exists()


def test_a_failed_start_exits_1_and_stops_what_it_started(tmp_path):
    run_dir = tmp_path / "mesh"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = _up(run_dir, "--port", str(port))
        try:
            output, _ = up.communicate(timeout=120)
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
    assert up.returncode == 1, output
    assert "edge" in output
    assert _processes_using(run_dir) == []


@pytest.mark.parametrize("name", ["my shop", "shop(1)", "shop$HOME"])
def test_a_run_directory_pg_ctl_cannot_pass_on_is_refused_with_why(tmp_path, name):
    # pg_ctl starts PostgreSQL through a shell: these would be split or expanded there.
    run_dir = tmp_path / name
    up = _up(run_dir)
    output, _ = up.communicate(timeout=60)
    assert up.returncode == 1, output
    assert "only letters, digits and _@%+=:,./- are safe" in output
    assert "use another run directory" in output and "Traceback" not in output
    assert not run_dir.exists()  # refused before anything was made there
    assert _processes_using(run_dir) == []


@pytest.mark.parametrize(("given", "port"), [((), "8080"), (("PORT=9090",), "9090")])
def test_make_up_takes_the_edges_port(repo_root, given, port):
    # Not a sub-make of the `make test` running us: its MAKEFLAGS would apply.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    planned = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "up", *given],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert planned.splitlines()[-1] == f".venv/bin/shopmesh up --port {port}", planned
