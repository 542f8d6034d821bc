// Failed calls as one error type, whichever transport failed: the services put a
// google.rpc.Status with details (ErrorInfo, BadRequest, ...) in every error;
// gRPC carries it binary in the `grpc-status-details-bin` trailer, the edge's
// REST/JSON mapping as the JSON response body.
import { createRegistry, fromBinary, fromJson, type JsonValue, type Message } from "@bufbuild/protobuf";
import { AnySchema, anyUnpack } from "@bufbuild/protobuf/wkt";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  file_google_rpc_error_details,
  type BadRequest_FieldViolation,
  type ErrorInfo,
} from "../../../gen/ts/google/rpc/error_details_pb.js";
import { StatusSchema, type Status } from "../../../gen/ts/google/rpc/status_pb.js";

const DETAIL_TYPES = createRegistry(file_google_rpc_error_details);
const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

// google.rpc.Code by the HTTP status of a reply without a Status body (e.g. from
// a proxy), after google/rpc/code.proto's mapping.
const CODE_BY_HTTP_STATUS: Record<number, grpcStatus> = {
  400: grpcStatus.INVALID_ARGUMENT,
  401: grpcStatus.UNAUTHENTICATED,
  403: grpcStatus.PERMISSION_DENIED,
  404: grpcStatus.NOT_FOUND,
  409: grpcStatus.ABORTED,
  429: grpcStatus.RESOURCE_EXHAUSTED,
  499: grpcStatus.CANCELLED,
  501: grpcStatus.UNIMPLEMENTED,
  503: grpcStatus.UNAVAILABLE,
  504: grpcStatus.DEADLINE_EXCEEDED,
};

export class RpcError extends Error {
  /** The google.rpc.Code, e.g. 3. */
  readonly code: grpcStatus;
  /** The details the server attached, unpacked (types the registry does not know are left out). */
  readonly details: Message[];

  constructor(code: grpcStatus, message: string, details: Message[] = []) {
    super(`${grpcStatus[code] ?? code}: ${message}`);
    this.name = "RpcError";
    this.code = code;
    this.details = details;
  }

  /** "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", ... */
  get codeName(): string {
    return grpcStatus[this.code] ?? String(this.code);
  }

  get errorInfo(): ErrorInfo | undefined {
    return this.details.find((d): d is ErrorInfo => d.$typeName === ErrorInfoSchema.typeName);
  }

  /** Every field the server rejected, with why (google.rpc.BadRequest). */
  get fieldViolations(): BadRequest_FieldViolation[] {
    return this.details
      .filter((d) => d.$typeName === BadRequestSchema.typeName)
      .flatMap((d) => (d as Message & { fieldViolations: BadRequest_FieldViolation[] }).fieldViolations);
  }

  static fromStatus(status: Status): RpcError {
    const details = status.details
      .map((any) => anyUnpack(any, DETAIL_TYPES))
      .filter((d): d is Message => d !== undefined);
    return new RpcError(status.code, status.message, details);
  }

  /** From a grpc-js error: its code and message, and the Status in its trailers if any. */
  static fromGrpc(error: ServiceError): RpcError {
    const [encoded] = error.metadata?.get(STATUS_DETAILS_TRAILER) ?? [];
    if (encoded instanceof Buffer) {
      return RpcError.fromStatus(fromBinary(StatusSchema, encoded));
    }
    return new RpcError(error.code, error.details);
  }

  /** From a non-2xx REST reply: a JSON google.rpc.Status, else the HTTP status alone. */
  static fromHttp(httpStatus: number, body: string): RpcError {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    if (json !== null && typeof json === "object" && "code" in json) {
      const { details = [], ...rest } = json as { details?: JsonValue[] };
      const status = fromJson(StatusSchema, rest, { ignoreUnknownFields: true });
      // Detail by detail: one of a type we do not know must not hide the others.
      for (const detail of details) {
        try {
          status.details.push(fromJson(AnySchema, detail, { registry: DETAIL_TYPES }));
        } catch {
          continue;
        }
      }
      return RpcError.fromStatus(status);
    }
    const code = CODE_BY_HTTP_STATUS[httpStatus] ?? grpcStatus.UNKNOWN;
    return new RpcError(code, `HTTP ${httpStatus}: ${body.slice(0, 200)}`);
  }
}
