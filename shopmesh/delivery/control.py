"""The runner's control socket: how `shopmesh rollout` asks a running `shopmesh up` to roll
out a new version, and follows it.

The runner owns every process of the mesh (it supervises them, records them in
state.json and stops them on Ctrl-C), so the rollout runs there, in a thread; the
command is its client. The socket is a Unix socket in the run directory
(control.sock, readable by its owner only). The protocol is JSON lines: the
client sends one request,

    {"op": "rollout", "service": "catalog", "version": "v2" | null,
     "command": ["python", "faulty.py", ...] | null, "cwd": "/where/the/client/runs",
     "window_seconds": 5 | null, "min_requests": 3 | null}

and reads the controller's events (note, sample, step) until the final one,
{"kind": "result", ...}, or {"kind": "error", "message": ...}. If the client goes
away mid-rollout the rollout is cancelled: rolled back, as on a breach; one that
stops reading (suspended) holds nothing up and gets the events when it reads. One
rollout at a time: the mesh routes one new version per service, and a second
rollout would judge the first one's calls as its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import queue
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from typing import Any

from shopmesh import rollout
from shopmesh.delivery.controller import Rollout
from shopmesh.local.mesh import LocalMesh

__all__ = ["ControlError", "ControlServer", "request"]

log = logging.getLogger("shopmesh.delivery")
# Interpreter names in a command that mean the mesh's own Python (with its packages).
PYTHON_NAMES = ("python", "python3")


class ControlError(RuntimeError):
    """No runner answers on the socket, or it refused the request."""


def _command(argv: list[str] | None) -> list[str] | None:
    if not argv:
        return None
    return [sys.executable if argv[0] in PYTHON_NAMES else argv[0], *argv[1:]]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            request = json.loads(self.rfile.readline() or b"{}")
        except ValueError as error:
            self._send({"kind": "error", "message": f"not a JSON request: {error}"})
            return
        if request.get("op") != "rollout":
            self._send({"kind": "error", "message": f"unknown op {request.get('op')!r}"})
            return
        if not self.server.rollout_lock.acquire(blocking=False):
            self._send({"kind": "error", "message": "a rollout is under way; wait for it"})
            return
        try:
            sent = self._rollout(request)
        finally:
            self.server.rollout_lock.release()
        if sent:  # the client gets every event, however late it reads them
            sent.join()

    def _rollout(self, request: dict[str, Any]) -> threading.Thread | None:
        mesh = self.server.mesh
        service = request.get("service", "")
        if service not in mesh.topology.services:
            known = ", ".join(mesh.topology.services)
            self._send({"kind": "error", "message": f"no such service: {service!r} ({known})"})
            return None
        policy = rollout.load()
        if request.get("window_seconds") is not None:
            try:
                policy = policy.with_window(request["window_seconds"], request.get("min_requests"))
            except ValueError as error:  # held to the policy file's rules: nothing started
                self._send({"kind": "error", "message": str(error)})
                return None
        cancel = threading.Event()
        # The controller never waits for its client: a client that stops reading (Ctrl-Z, a
        # pipe nobody drains) would block a send once the socket's buffer is full, and with
        # it the controller in the middle of a step, judging nothing and rolling nothing back.
        outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        sender = threading.Thread(
            target=self._send_all, args=(outbox, cancel), name="shopmesh-rollout", daemon=True
        )
        try:
            controller = Rollout(
                mesh,
                service,
                request.get("version") or mesh.next_version(service),
                policy,
                command=_command(request.get("command")),
                cwd=pathlib.Path(request["cwd"]) if request.get("cwd") else None,
                report=outbox.put,
                cancel=cancel,
            )
        except ValueError as error:
            self._send({"kind": "error", "message": str(error)})
            return None
        sender.start()
        self.server.cancels.add(cancel)
        try:
            controller.run()
        finally:
            self.server.cancels.discard(cancel)
            outbox.put(None)
        return sender

    def _send_all(self, outbox: queue.SimpleQueue, cancel: threading.Event) -> None:
        """Sends the controller's events in order until None; if the client went away,
        cancels the rollout (it rolls back) and drops the rest."""
        gone = False
        while (event := outbox.get()) is not None:
            if gone:
                continue
            try:
                self._send(event)
            except OSError:
                gone = True
                cancel.set()

    def _send(self, event: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(event).encode() + b"\n")
        self.wfile.flush()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: pathlib.Path, mesh: LocalMesh) -> None:
        self.mesh = mesh
        self.rollout_lock = threading.Lock()
        self.cancels: set[threading.Event] = set()
        super().__init__(str(path), _Handler)


class ControlServer:
    """Serves the control socket of `mesh` (at its run directory's control.sock) in a thread."""

    def __init__(self, mesh: LocalMesh) -> None:
        self.path = mesh.layout.control
        self.path.unlink(missing_ok=True)
        old_umask = os.umask(0o177)  # the socket is its owner's only
        try:
            self._server = _Server(self.path, mesh)
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="shopmesh-control", daemon=True
        )

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def close(self, timeout: float = 60.0) -> None:
        """Stops accepting requests and rolls back a rollout under way (waits for it)."""
        self._server.shutdown()
        self._server.server_close()
        for cancel in list(self._server.cancels):
            cancel.set()
        if self._server.rollout_lock.acquire(timeout=timeout):
            self._server.rollout_lock.release()
        self.path.unlink(missing_ok=True)


def request(path: pathlib.Path, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Sends `message` to the runner listening on `path` and yields its events."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except OSError as error:
        client.close()
        raise ControlError(
            f"no mesh runner answers on {path}: {error.strerror} (is `shopmesh up` running?)"
        ) from None
    with contextlib.closing(client), client.makefile("rwb") as stream:
        stream.write(json.dumps(message).encode() + b"\n")
        stream.flush()
        for line in stream:
            event = json.loads(line)
            if event.get("kind") == "error":
                raise ControlError(event["message"])
            yield event
