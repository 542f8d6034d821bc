// gRPC over HTTP/2 with @grpc/grpc-js, using protobuf-es message types: the
// method path and (de)serializers come from the generated service descriptor,
// so there is no second code generator and no .proto loading at run time.
import { fromBinary, toBinary, type Message } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Client as GrpcChannel, Metadata, type ChannelCredentials } from "@grpc/grpc-js";
import { bearer, grpcPath, makeClient, type Client, type Transport } from "./contracts.js";
import { RpcError } from "./errors.js";

export interface GrpcConnection<S extends GenServiceMethods> {
  client: Client<S>;
  close(): void;
}

export interface GrpcOptions {
  /** host:port of every replica (or one address of a load balancer). */
  addresses: string[];
  credentials: ChannelCredentials;
  /** The name TLS asks for and :authority carries, e.g. "catalog.shop.svc". */
  authority?: string;
}

/**
 * A client of `service` on one channel. Several addresses are balanced round
 * robin by grpc-js itself, as a mesh client would over a service's endpoints.
 * No retries here: the sidecars retry what the contract allows (one retry
 * layer per hop).
 */
export function dialGrpc<S extends GenServiceMethods>(
  service: GenService<S>,
  options: GrpcOptions,
): GrpcConnection<S> {
  const [first, ...more] = options.addresses;
  if (!first) throw new Error(`no address for ${service.typeName}`);
  // The ipv4: scheme takes a list of literal addresses (the local mesh's case).
  const target = more.length ? `ipv4:${options.addresses.join(",")}` : first;
  const channel = new GrpcChannel(target, options.credentials, {
    "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    ...(options.authority && {
      "grpc.default_authority": options.authority,
      "grpc.ssl_target_name_override": options.authority,
    }),
  });
  const transport: Transport = (method, request, { timeoutMs, token }) =>
    new Promise((resolve, reject) => {
      const metadata = new Metadata();
      // The end user's token, passed through: the sidecar of a service that acts for
      // end users verifies it and hands the service the verified claims.
      if (token) metadata.set("authorization", bearer(token));
      channel.makeUnaryRequest<Message, Message>(
        grpcPath(method),
        (message) => Buffer.from(toBinary(method.input, message)),
        (bytes) => fromBinary(method.output, bytes),
        request,
        metadata,
        // grpc-js sends it as grpc-timeout; the mesh propagates what remains of it.
        { deadline: Date.now() + timeoutMs },
        (error, response) => (error ? reject(RpcError.fromGrpc(error)) : resolve(response!)),
      );
    });
  return { client: makeClient(service, transport), close: () => channel.close() };
}
