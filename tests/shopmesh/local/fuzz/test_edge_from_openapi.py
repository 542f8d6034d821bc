"""Property-based fuzzing of the live edge from the OpenAPI description it serves.

schemathesis generates requests for every operation of GET /v1/openapi.json, as
the description allows them (positive) and as it does not (negative);
http_mutations.py turns some into what frontends send and no description
generates. Each goes out with a customer's token, none, or a garbage one. Checked
for every response: no 5xx; every 4xx a JSON google.rpc.Status (a code, a message
without exception text, details with their types); what the description says of
the response's shape; and a rejected request (4xx) to a route that writes changes
no order, stock or payment (every table of those databases, before and after).

The short form runs in make test; `pytest tests/shopmesh/local/fuzz
--fuzz-examples 300 -s` is a longer run and prints its figures.
"""

from __future__ import annotations

import collections
import functools
import time
import uuid

import grpc
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from shopmesh.envoy import openapi

from .http_mutations import mutate

pytestmark = pytest.mark.timeout(900)

CODES = {code.value[0] for code in grpc.StatusCode}
# What a Python exception looks like in text: none of it may reach a client.
EXCEPTION_TEXT = ("Traceback", "<class ", "DecodeError", "Exception", 'File "')
AUTH = ("customer", "customer", "customer", "none", "garbage")


def _status_problems(response: requests.Response) -> list[str]:
    """Why an error response is not a JSON google.rpc.Status (empty if it is)."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return [f"content-type {response.headers.get('content-type')!r}"]
    try:
        status = response.json()
    except ValueError:
        return ["not JSON"]
    problems = []
    if not isinstance(status, dict):
        return ["not an object"]
    if status.get("code") not in CODES - {0}:
        problems.append(f"code {status.get('code')!r}")
    message = status.get("message")
    if not isinstance(message, str) or not message:
        problems.append("no message")
    elif any(text in message for text in EXCEPTION_TEXT):
        problems.append(f"exception text in the message: {message[:200]!r}")
    details = status.get("details")
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("@type"), str) for d in details
    ):
        problems.append(f"details {details!r:.200}")
    if set(status) - {"code", "message", "details"}:
        problems.append(f"other fields {sorted(set(status) - {'code', 'message', 'details'})}")
    return problems


@pytest.fixture(scope="module")
def schema(fuzz_mesh):
    """The description as the edge serves it."""
    return schemathesis.openapi.from_url(fuzz_mesh.edge_url + openapi.PATH)


def test_the_edge_answers_every_fuzzed_request_with_a_2xx_or_a_4xx_status_and_writes_nothing_it_rejects(  # noqa: E501
    fuzz_mesh, schema, records, fuzz_examples
):
    mesh = fuzz_mesh
    customers = [f"fuzz-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    tokens = {customer: mesh.tokens.bearer(customer, ()) for customer in customers}
    session = requests.Session()
    statuses: collections.Counter = collections.Counter()  # (operation, HTTP status)
    mutations: collections.Counter = collections.Counter()
    failures: list[str] = []
    started = time.monotonic()

    def send(operation, case, data) -> None:
        auth = data.draw(st.sampled_from(AUTH), label="auth")
        headers = {}
        if auth == "customer":
            headers["authorization"] = tokens[data.draw(st.sampled_from(customers))]
        elif auth == "garbage":
            headers["authorization"] = data.draw(
                st.sampled_from(["Bearer x", "Bearer " + "e" * 40, "Basic YTpi", "bearer"])
            )
        request = case.as_transport_kwargs(base_url=mesh.edge_url, headers=headers)
        mutation, request = mutate(data, request)
        writes = request["method"] != "GET"
        before = records.snapshot() if writes else None
        response = session.request(**request, timeout=30)
        statuses[(operation.label, response.status_code)] += 1
        mutations[mutation] += 1
        where = f"{operation.label} [{mutation}, token: {auth}] -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.text[:300]}")
        elif response.status_code >= 400:
            if problems := _status_problems(response):
                failures.append(
                    f"{where}: not a google.rpc.Status {problems}: {response.text:.300}"
                )
            if before is not None and records.snapshot() != before:
                failures.append(f"{where}: rejected, yet the databases changed")
        if response.status_code < 500 and mutation == "as generated":
            try:
                case.validate_response(
                    response,
                    checks=[
                        openapi_checks.response_schema_conformance,
                        openapi_checks.content_type_conformance,
                    ],
                )
            except AssertionError as mismatch:
                failures.append(f"{where}: {str(mismatch)[:500]}")

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(
                    operation.as_strategy(generation_mode=mode),
                    fuzz_examples,
                    functools.partial(send, operation),
                )
            except Unsatisfiable:
                # An operation whose only parameter is a path's has no invalid form.
                assert mode is GenerationMode.NEGATIVE
    _print_figures(statuses, mutations, time.monotonic() - started)
    assert not failures, "\n".join(failures[:20])
    assert statuses, "no request was sent"


def _fuzz(cases, examples: int, send) -> None:
    """Runs `send(case, data)` for `examples` cases (hypothesis shrinks a failing one)."""

    @given(case=cases, data=st.data())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case, data) -> None:
        send(case, data)

    fuzz()


def _print_figures(
    statuses: collections.Counter, mutations: collections.Counter, elapsed: float
) -> None:
    print(f"\nedge fuzz: {sum(statuses.values())} requests in {elapsed:.1f} s")
    by_operation: dict[str, dict[int, int]] = collections.defaultdict(dict)
    for (label, status), count in statuses.items():
        by_operation[label][status] = count
    for label, counts in sorted(by_operation.items()):
        shown = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items()))
        print(f"  {label:<32} {shown}")
    print("  " + ", ".join(f"{name}: {count}" for name, count in sorted(mutations.items())))
