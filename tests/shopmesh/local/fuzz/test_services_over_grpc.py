"""Fuzzing every service over gRPC, through its sidecar, as a caller the topology allows.

For every RPC of every service, generated requests (messages.requests_of) and
mutated ones (messages.mutated_bytes) go to the service's replica through its
sidecar, over mTLS with the certificate of a workload that shopmesh/topology.yaml
allows to call that RPC, and, to the order service, with a customer's token.
Checked: no call ends INTERNAL, UNKNOWN or DATA_LOSS; no app or sidecar crashes
or is restarted; and the ids (UUIDs) a rejected call carried appear nowhere in
the systems of record afterwards, unless a call that was carried out carried
them too: a rejected call wrote nothing. (A per-call
before/after comparison of the databases, as the edge's fuzzer makes, does not
hold here: calls made directly to inventory and payment are also accepted, a
reservation or a charge, and the services' background jobs act on those at
times of their own, when a reservation expires.)

The short form runs in make test; `--fuzz-examples N -s` runs a longer one and
prints its figures.
"""

from __future__ import annotations

import collections
import functools
import re
import time

import grpc
import pytest
from hypothesis import HealthCheck, given, settings

from mesh import contracts
from shopmesh.chaos.probes import app_health
from shopmesh.local.mesh import LocalMesh, Replica

from ..meshclient import as_workload
from .messages import mutated_bytes, requests_of

pytestmark = pytest.mark.timeout(900)

NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
# The outcome is unknown to the caller: the call may have been carried out.
UNDECIDED = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _caller(mesh: LocalMesh, path: str) -> str:
    """A workload allowed to call `path`."""
    service = contracts.method_policy(path).service
    return next(
        caller
        for caller, allowed in sorted(mesh.topology.callers(service).items())
        if path in allowed
    )


def _processes(mesh: LocalMesh) -> dict[str, tuple[int | None, int]]:
    """Every app and sidecar: pid and restarts."""
    return {
        process.name: (process.pid, process.restarts)
        for replicas in mesh.replicas.values()
        for replica in replicas
        for process in (replica.app, replica.sidecar.process)
    }


def test_no_service_fails_internally_crashes_or_writes_what_it_rejects(
    fuzz_mesh, records, fuzz_examples
):
    mesh = fuzz_mesh
    before = _processes(mesh)
    token = (("authorization", mesh.tokens.bearer("fuzz-grpc-customer", ())),)
    channels: dict[tuple[str, str], grpc.Channel] = {}
    codes: collections.Counter = collections.Counter()  # (method, kind, code)
    failures: list[str] = []
    rejected_ids: dict[str, str] = {}  # a UUID -> the rejected call that carried it
    carried_out: set[str] = set()  # UUIDs of calls that were (or may have been) carried out
    started = time.monotonic()

    def call(replica: Replica, path: str, kind: str, request: bytes) -> None:
        caller = _caller(mesh, path)
        key = (caller, replica.name)
        if key not in channels:
            channels[key] = as_workload(mesh, caller, replica)
        end_user = mesh.topology.needs_end_user(replica.service)
        try:
            channels[key].unary_unary(path)(request, metadata=token if end_user else (), timeout=15)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            if code in NEVER:
                failures.append(f"{path} [{kind}, as {caller}]: {code.name} {error.details()!r}")
        codes[(path, kind, code.name)] += 1
        for found in _UUID.findall(request):
            if code in UNDECIDED:
                carried_out.add(found.decode())
            else:
                rejected_ids[found.decode()] = f"{path} [{kind}] -> {code.name}"

    for service in mesh.topology.services:
        replica = mesh.replica(service, 0)
        for policy in contracts.service(service).methods.values():
            kind = policy.descriptor.input_type
            send = functools.partial(call, replica, policy.path)
            _fuzz(
                requests_of(kind),
                fuzz_examples,
                lambda r, send=send: send("generated", r.SerializeToString()),
            )
            _fuzz(mutated_bytes(kind), fuzz_examples, lambda m, send=send: send("mutated", m[0]))
    for channel in channels.values():
        channel.close()
    elapsed = time.monotonic() - started

    written = records.snapshot()
    for carried, which in rejected_ids.items():
        if carried not in carried_out and (where := records.containing(carried, written)):
            failures.append(f"{which}: rejected, yet {carried}, which it carried, is in {where}")
    after = _processes(mesh)
    for name, (pid, restarts) in before.items():
        if after[name] != (pid, restarts):
            failures.append(f"{name}: pid {pid} -> {after[name][0]}, restarts {after[name][1]}")
    for replicas in mesh.replicas.values():
        for replica in replicas:
            if app_health(replica) != "SERVING":
                failures.append(f"{replica.name}: {app_health(replica)} after the fuzz")
    _print_figures(codes, len(rejected_ids), elapsed)
    assert not failures, "\n".join(failures[:20])


def _fuzz(requests, examples: int, send) -> None:
    """Runs `send(request)` for `examples` requests (hypothesis shrinks a failing one)."""

    @given(request=requests)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(request) -> None:
        send(request)

    fuzz()


def _print_figures(codes: collections.Counter, rejected_ids: int, elapsed: float) -> None:
    print(f"\ngRPC fuzz: {sum(codes.values())} calls in {elapsed:.1f} s")
    by_method: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for (path, _kind, code), count in codes.items():
        by_method[path][code] += count
    for path, counted in sorted(by_method.items()):
        shown = ", ".join(f"{code} {count}" for code, count in sorted(counted.items()))
        print(f"  {path.lstrip('/'):<58} {shown}")
    print(f"  ids of rejected calls looked for in the databases: {rejected_ids}")
