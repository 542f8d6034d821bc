// REST/JSON through the edge, mapped by each method's google.api.http rule in
// the contract (the rule Envoy's gRPC-JSON transcoder serves), with protobuf's
// canonical JSON mapping for messages. Same client shape as gRPC.
import {
  fromJson,
  toJson,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { status as grpcStatus } from "@grpc/grpc-js";
import { bearer, grpcPath, httpRule, makeClient, type Client, type Transport } from "./contracts.js";
import { RpcError } from "./errors.js";

const PATH_VARIABLE = /\{([^}=]+)(=[^}]*)?\}/g;

function field(schema: DescMessage, name: string) {
  const found = schema.fields.find((f) => f.name === name);
  if (!found) throw new Error(`${schema.typeName} has no field ${name} (nested paths unsupported)`);
  return found;
}

/** The URL path and the fields it consumed, e.g. "/v1/orders/o-1" from "/v1/orders/{id}". */
function expandPath(template: string, schema: DescMessage, request: Message) {
  const used: string[] = [];
  const path = template.replace(PATH_VARIABLE, (_, name: string) => {
    const f = field(schema, name);
    used.push(f.name);
    return encodeURIComponent(String((request as unknown as Record<string, unknown>)[f.localName]));
  });
  return { path, used };
}

/** Every set field not bound by the path, as query parameters (proto field names). */
function queryString(json: JsonObject, exclude: string[]): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(json)) {
    if (exclude.includes(name)) continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== null && typeof item === "object") {
        throw new Error(`query parameter ${name}: messages cannot be sent in a query string`);
      }
      query.append(name, String(item));
    }
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

function requestBody(rule: string, schema: DescMessage, request: Message, pathFields: string[]) {
  const json = toJson(schema, request) as JsonObject;
  if (rule === "*") {
    for (const name of pathFields) delete json[field(schema, name).jsonName];
    return json;
  }
  return json[field(schema, rule).jsonName] ?? {};
}

/** A client of `service` through the edge at `baseUrl` (e.g. http://127.0.0.1:8080). */
export function restClient<S extends GenServiceMethods>(service: GenService<S>, baseUrl: string): Client<S> {
  const transport: Transport = async (method, request, { timeoutMs, token }) => {
    const rule = httpRule(method);
    if (!rule) throw new Error(`${grpcPath(method)} has no HTTP rule: it is gRPC only`);
    const { case: verb, value: template } = rule.pattern;
    if (verb === undefined || verb === "custom") throw new Error(`${grpcPath(method)}: custom verbs unsupported`);
    const { path, used } = expandPath(template, method.input, request);
    const query = rule.body ? "" : queryString(toJson(method.input, request, { useProtoFieldName: true }) as JsonObject, used);
    let response: Response;
    let text: string;
    try {
      response = await fetch(new URL(path + query, baseUrl), {
        method: verb.toUpperCase(),
        headers: {
          "content-type": "application/json",
          // The edge turns the REST call into gRPC; this deadline travels with it.
          "grpc-timeout": `${timeoutMs}m`,
          ...(token && { authorization: bearer(token) }),
        },
        body: rule.body ? JSON.stringify(requestBody(rule.body, method.input, request, used)) : undefined,
        // And we stop waiting when it passes, whatever the network does.
        signal: AbortSignal.timeout(timeoutMs),
      });
      // The body is part of the answer: the deadline covers reading it too.
      text = await response.text();
    } catch (error) {
      if (error instanceof DOMException && error.name === "TimeoutError") {
        throw new RpcError(grpcStatus.DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`);
      }
      throw new RpcError(grpcStatus.UNAVAILABLE, String(error));
    }
    if (!response.ok) throw RpcError.fromHttp(response.status, text);
    try {
      let json = JSON.parse(text) as JsonValue;
      // response_body: the reply is that one field of the response message.
      if (rule.responseBody) json = { [field(method.output, rule.responseBody).jsonName]: json };
      // Newer servers may send fields this client does not know yet.
      return fromJson(method.output, json, { ignoreUnknownFields: true });
    } catch (error) {
      // A success status with a body that is not the response message is a broken
      // answer, and callers handle every failure as an RpcError.
      throw new RpcError(grpcStatus.INTERNAL, `HTTP ${response.status} but not a ${method.output.typeName}: ${error}`);
    }
  };
  return makeClient(service, transport);
}
