"""Processes a previous run left behind in a run directory.

`shopmesh up` normally stops everything it started. If it was killed outright
(SIGKILL, a crash), its children keep running in their own sessions and
state.json stays. The next start finds them through state.json and stops them,
but only processes that are provably the mesh's: still alive, and naming this
run directory in their command line (Envoy: its config path) or environment
(apps: SHOPMESH_MESH_CONFIG).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import time

from shopmesh.local.layout import RunDir

__all__ = ["RunnerAlive", "clear"]


class RunnerAlive(RuntimeError):
    """The runner that wrote state.json is still running."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _belongs(pid: int, root: pathlib.Path) -> bool:
    marker = str(root).encode()
    for part in ("cmdline", "environ"):
        try:
            if marker in pathlib.Path(f"/proc/{pid}/{part}").read_bytes():
                return True
        except OSError:
            continue
    return False


def clear(layout: RunDir) -> list[int]:
    """Stops what a dead runner left in `layout` and removes its state.json.

    Returns the pids stopped; raises RunnerAlive if the runner still runs.
    """
    try:
        state = json.loads(layout.state.read_text())
    except FileNotFoundError:
        return []
    runner = state.get("runner_pid")
    if runner and runner != os.getpid() and _alive(runner):
        raise RunnerAlive(f"a mesh runner (pid {runner}) is using {layout.root}")
    pids = [state.get("edge", {}).get("pid")]
    for replica in state.get("replicas", []):
        pids += [replica.get("app_pid"), replica.get("sidecar_pid")]
    left = [pid for pid in pids if pid and _alive(pid) and _belongs(pid, layout.root)]
    for pid in left:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    layout.state.unlink(missing_ok=True)
    return left
