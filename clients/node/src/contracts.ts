// What the contracts say about a method, read from the generated descriptors
// (the same proto/ the Python services and Envoy read), and the client shape
// both transports share.
import {
  create,
  getOption,
  type DescMethod,
  type Message,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { HttpRule } from "../../../gen/ts/google/api/http_pb.js";
import { http } from "../../../gen/ts/google/api/annotations_pb.js";
import { policy } from "../../../gen/ts/shop/mesh/v1/options_pb.js";

/** Options of one call, whatever carries it. */
export interface CallOptions {
  /** Deadline, in ms from now. Default: the method's (shop.mesh.v1.policy).timeout_ms. */
  timeoutMs?: number;
  /**
   * The end user's token (a JWT) the call acts for, sent as `authorization: Bearer
   * <token>`. A storefront backend passes on the token its shopper signed in with:
   * every order RPC needs one, and acts for the token's subject only.
   */
  token?: string;
}

/** What a transport needs of one call: a deadline always, the end user's token if any. */
export interface CallSettings {
  timeoutMs: number;
  token?: string;
}

/** The `authorization` value of an end user's token. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** One promise-returning function per RPC of a service, typed from its generated descriptor. */
export type Client<S extends GenServiceMethods> = {
  [K in keyof S]: (
    request: MessageInitShape<S[K]["input"]>,
    options?: CallOptions,
  ) => Promise<MessageShape<S[K]["output"]>>;
};

/** How a transport performs one unary call: a request in, the response or an RpcError out. */
export type Transport = (method: DescMethod, request: Message, call: CallSettings) => Promise<Message>;

/** "/shop.catalog.v1.CatalogService/ListProducts": the method's gRPC path. */
export function grpcPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The contract's default deadline of a method; every RPC in proto/ declares one. */
export function defaultTimeoutMs(method: DescMethod): number {
  const timeoutMs = getOption(method, policy).timeoutMs;
  if (timeoutMs <= 0) {
    throw new Error(`${grpcPath(method)} declares no (shop.mesh.v1.policy).timeout_ms`);
  }
  return timeoutMs;
}

/** The method's google.api.http rule, or undefined for gRPC-only (internal) RPCs. */
export function httpRule(method: DescMethod): HttpRule | undefined {
  const rule = getOption(method, http);
  return rule.pattern.case === undefined ? undefined : rule;
}

/** A typed client of `service` whose calls go through `transport`, each with a deadline. */
export function makeClient<S extends GenServiceMethods>(
  service: GenService<S>,
  transport: Transport,
): Client<S> {
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue; // the contracts have unary RPCs only
    client[method.localName] = (request: MessageInitShape<DescMethod["input"]>, options?: CallOptions) => {
      const timeoutMs = options?.timeoutMs ?? defaultTimeoutMs(method);
      if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, not ${timeoutMs}`);
      return transport(method, create(method.input, request), { timeoutMs, token: options?.token });
    };
  }
  return client as Client<S>;
}

/** The client type of a generated service, e.g. ClientOf<typeof CatalogService>. */
export type ClientOf<T> = T extends GenService<infer S> ? Client<S> : never;
