// The REST transport against a scripted HTTP server (node:test): what the client
// sends and how it fails, for answers the real edge rarely gives.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import { CatalogService } from "../../../gen/ts/shop/catalog/v1/catalog_pb.js";
import { RpcError } from "../src/errors.js";
import { restClient } from "../src/rest.js";

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
let handler: Handler = (_, response) => response.end();
const server = createServer((request, response) => handler(request, response));
await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
after(() => {
  server.closeAllConnections();
  server.close();
});
const catalog = restClient(CatalogService, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);

function failsWith(codeName: string) {
  return (error: unknown) => error instanceof RpcError && error.codeName === codeName;
}

test("the deadline travels as grpc-timeout", async () => {
  let seen: string | undefined;
  handler = (request, response) => {
    seen = request.headers["grpc-timeout"] as string | undefined;
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ product: { id: "kitchen-espresso-cup" } }));
  };
  const { product } = await catalog.getProduct({ id: "kitchen-espresso-cup" }, { timeoutMs: 1500 });
  assert.equal(product?.id, "kitchen-espresso-cup");
  assert.equal(seen, "1500m");
});

test("an end user's token travels as a bearer authorization header, and only when given", async () => {
  const seen: (string | undefined)[] = [];
  handler = (request, response) => {
    seen.push(request.headers.authorization);
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ product: { id: "kitchen-espresso-cup" } }));
  };
  await catalog.getProduct({ id: "kitchen-espresso-cup" }, { token: "header.payload.signature" });
  await catalog.getProduct({ id: "kitchen-espresso-cup" });
  assert.deepEqual(seen, ["Bearer header.payload.signature", undefined]);
});

test("a body still arriving at the deadline is DEADLINE_EXCEEDED", async () => {
  const stalled: ServerResponse[] = [];
  handler = (_, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.write("{"); // headers and a first byte now, the rest never
    stalled.push(response);
  };
  await assert.rejects(catalog.getProduct({ id: "p" }, { timeoutMs: 200 }), failsWith("DEADLINE_EXCEEDED"));
  for (const response of stalled) response.destroy();
});

test("a success status without the response message is INTERNAL", async () => {
  for (const body of ["<html>not json</html>", JSON.stringify({ product: { id: 7 } })]) {
    handler = (_, response) => {
      response.setHeader("content-type", "application/json");
      response.end(body);
    };
    await assert.rejects(catalog.getProduct({ id: "p" }), failsWith("INTERNAL"), body);
  }
});

test("an error status with a google.rpc.Status body keeps its code", async () => {
  handler = (_, response) => {
    response.writeHead(404, { "content-type": "application/json" });
    response.end(JSON.stringify({ code: 5, message: "no product p" }));
  };
  await assert.rejects(catalog.getProduct({ id: "p" }), failsWith("NOT_FOUND"));
});
