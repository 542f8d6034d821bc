// The storefront-node workload's smoke run against a running mesh: the same
// shopping trip over gRPC (mTLS to the sidecars, as spiffe://.../sa/storefront-node)
// and over REST/JSON through the edge, for the shopper whose token it is given
// (as a storefront backend passes on the token its shopper signed in with).
// Prints what happened as JSON.
//
//   node dist/clients/node/src/main.js --run-dir ../../var/mesh \
//       --token "$(../../.venv/bin/shopmesh token --customer ada --run-dir ../../var/mesh)"
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { CatalogService } from "../../../gen/ts/shop/catalog/v1/catalog_pb.js";
import { InventoryService } from "../../../gen/ts/shop/inventory/v1/inventory_pb.js";
import { OrderService, OrderStatusSchema, type Order } from "../../../gen/ts/shop/order/v1/order_pb.js";
import { defaultTimeoutMs, grpcPath, type ClientOf } from "./contracts.js";
import { discover } from "./discovery.js";
import { RpcError } from "./errors.js";
import { dialGrpc } from "./grpc.js";
import { loadIdentity, mtlsCredentials } from "./identity.js";
import { restClient } from "./rest.js";

interface Shop {
  catalog: ClientOf<typeof CatalogService>;
  orders: ClientOf<typeof OrderService>;
}

function describeOrder(order: Order | undefined) {
  return order && {
    id: order.id,
    status: OrderStatusSchema.values.find((v) => v.number === order.status)?.name,
    failure_reason: order.failureReason,
    lines: order.lines.map((l) => ({ product_id: l.productId, sku: l.sku, quantity: l.quantity })),
  };
}

/** The error a call failed with; "OK" if it did not fail, so a caller can tell. */
async function failure(call: Promise<unknown>) {
  try {
    await call;
    return { code: "OK" };
  } catch (error) {
    if (!(error instanceof RpcError)) throw error;
    return {
      code: error.codeName,
      message: error.message,
      reason: error.errorInfo?.reason,
      domain: error.errorInfo?.domain,
      field_violations: Object.fromEntries(error.fieldViolations.map((v) => [v.field, v.description])),
    };
  }
}

/**
 * List products (anonymous), buy `quantity` of the `pick`-th as the token's shopper,
 * list their orders, then a bad checkout, a checkout without the token and a hopeless
 * deadline.
 */
async function shoppingTrip({ catalog, orders }: Shop, token: string, pick: number, quantity: number) {
  const listing = await catalog.listProducts({ pageSize: 5 });
  const product = listing.products[pick];
  if (!product) throw new Error(`the catalog listed ${listing.products.length} products`);
  const checkout = {
    items: [{ productId: product.id, quantity }],
    shippingAddress: { regionCode: "US", addressLines: ["1 Main St"], recipients: ["Node Shopper"] },
    paymentMethod: { kind: { case: "card" as const, value: { token: "tok_visa" } } },
  };
  // No customerId: the order is the token's subject's.
  const placed = await orders.placeOrder({ ...checkout, requestId: randomUUID() }, { token });
  const mine = await orders.listOrders({ pageSize: 100 }, { token });
  return {
    products: listing.products.map((p) => p.id),
    order: describeOrder(placed.order),
    listed: mine.orders.map((o) => ({ id: o.id, customer_id: o.customerId })),
    // No address, no payment, a quantity out of range and a request_id that is no UUID.
    bad_request: await failure(
      orders.placeOrder({ items: [{ productId: product.id, quantity: 0 }], requestId: "again" }, { token }),
    ),
    no_token: await failure(orders.placeOrder({ ...checkout, requestId: randomUUID() })),
    deadline: await failure(catalog.listProducts({ pageSize: 5 }, { timeoutMs: 1 })),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "run-dir": { type: "string", default: process.env.SHOPMESH_RUN_DIR ?? "var/mesh" },
      workload: { type: "string", default: "storefront-node" },
      token: { type: "string", default: process.env.SHOPMESH_TOKEN },
    },
  });
  const token = values.token;
  if (!token) throw new Error("no end user's token: --token or SHOPMESH_TOKEN (shopmesh token --customer ...)");
  const runDir = values["run-dir"];
  const mesh = discover(runDir);
  const identity = loadIdentity(join(runDir, "certs"), values.workload);
  // `expect`: whose SPIFFE ID the sidecars at `name`'s addresses must present.
  const dial = <S extends GenServiceMethods>(service: GenService<S>, name: string, expect = name) =>
    dialGrpc(service, {
      addresses: mesh.services[name] ?? [],
      credentials: mtlsCredentials(identity, expect),
      authority: `${name}.shop.svc`,
    });
  const catalog = dial(CatalogService, "catalog");
  const orders = dial(OrderService, "order");
  const inventory = dial(InventoryService, "inventory");
  const impostor = dial(CatalogService, "catalog", "order");
  try {
    const grpc = await shoppingTrip({ catalog: catalog.client, orders: orders.client }, token, 0, 2);
    if (!mesh.edgeUrl) throw new Error("no edge URL: set SHOPMESH_EDGE_URL or start the mesh");
    const rest = await shoppingTrip(
      { catalog: restClient(CatalogService, mesh.edgeUrl), orders: restClient(OrderService, mesh.edgeUrl) },
      token,
      1,
      1,
    );
    const methods = [CatalogService.method.listProducts, OrderService.method.placeOrder];
    const report = {
      workload: identity.spiffeId,
      deadlines_ms: Object.fromEntries(methods.map((m) => [grpcPath(m), defaultTimeoutMs(m)])),
      grpc,
      rest,
      // shopmesh/topology.yaml lets storefront-node call no inventory RPC: its sidecar must refuse.
      not_allowed: await failure(inventory.client.getStock({ sku: grpc.order?.lines[0]?.sku })),
      // And the client knows the sidecars by theirs: catalog's is not order's.
      wrong_peer: await failure(impostor.client.listProducts({})),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const connection of [catalog, orders, inventory, impostor]) connection.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`storefront: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
