"""Handler exceptions and their mapping to `google.rpc.Status` with details.

Handlers raise the small exception types below instead of touching the gRPC
context; `ErrorInterceptor` turns them into a status whose details always carry
an `ErrorInfo` (reason, domain = the service's proto package, metadata), plus
`BadRequest` field violations for INVALID_ARGUMENT and `PreconditionFailure`
violations where given. Any other exception becomes INTERNAL with a generic
message and a trace id; the stack trace goes to the log, never to the client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace

from services.runtime.unary import Behavior, UnaryWrappingInterceptor

__all__ = [
    "AlreadyExists",
    "ErrorInterceptor",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PreconditionViolation",
    "ServiceError",
    "Unauthenticated",
    "Unavailable",
    "current_trace_id",
    "domain_of",
]

log = logging.getLogger("shopmesh.errors")


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one request field; `field` is a path such as "items[2].quantity"."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition, e.g. type "STOCK", subject "sku-123"."""

    type: str
    subject: str
    description: str


class ServiceError(Exception):
    """An error a handler means to send: a code, a machine-readable reason and a message."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # A reason defaults to the code's name, so every error has one to switch on.
        self.reason = reason or self.code.name
        self.metadata = dict(metadata or {})

    def extra_details(self) -> list:
        """Detail messages beyond ErrorInfo (BadRequest, PreconditionFailure, ...)."""
        return []


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation], message: str | None = None) -> None:
        self.violations = list(violations)
        fields = ", ".join(v.field for v in self.violations)
        super().__init__(message or f"invalid request: {fields}", reason="INVALID_REQUEST")

    def extra_details(self) -> list:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(ServiceError):
    """No verified caller: the request carries no (valid) credential for what it asks."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    """The caller is known and may not do this. Where even the existence of a resource
    is not the caller's business, raise NotFound instead."""

    code = grpc.StatusCode.PERMISSION_DENIED


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(
        self,
        reason: str,
        message: str,
        violations: Iterable[PreconditionViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)

    def extra_details(self) -> list:
        if not self.violations:
            return []
        return [
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=v.type, subject=v.subject, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


class Unavailable(ServiceError):
    """The service cannot answer now (its store or an upstream is down); retrying may work."""

    code = grpc.StatusCode.UNAVAILABLE


def domain_of(method_path: str) -> str:
    """The proto package of a method path: "/shop.x.v1.XService/Get" -> "shop.x.v1"."""
    full_service = method_path.lstrip("/").partition("/")[0]
    return full_service.rpartition(".")[0]


def current_trace_id() -> str:
    """The current OpenTelemetry trace id as 32 hex digits, or a fresh random id."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    return uuid.uuid4().hex


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: ServiceError, domain: str) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    status = status_pb2.Status(
        code=error.code.value[0],
        message=error.message,
        details=[_pack(info), *(_pack(d) for d in error.extra_details())],
    )
    return rpc_status.to_status(status)


def _internal_status(domain: str, trace_id: str) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=domain, metadata={"trace_id": trace_id}
    )
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (trace id {trace_id})",
        details=[_pack(info)],
    )
    return rpc_status.to_status(status)


class ErrorInterceptor(UnaryWrappingInterceptor):
    """Maps exceptions raised by unary handlers to rich statuses (see module doc)."""

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        domain = domain_of(method)

        async def mapped(request, context):
            try:
                return await behavior(request, context)
            except ServiceError as error:
                status = to_status(error, domain)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise  # the handler already ended the call itself
            except Exception:
                trace_id = current_trace_id()
                log.exception("unhandled error in %s", method, extra={"trace_id": trace_id})
                status = _internal_status(domain, trace_id)
            # abort (not abort_with_status): tracing and metrics read the code it sets.
            await context.abort(status.code, status.details, status.trailing_metadata)

        return mapped
