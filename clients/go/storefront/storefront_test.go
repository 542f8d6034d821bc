package storefront

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/postaladdress"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "shopmesh.example/gen/go/shop/catalog/v1"
	inventoryv1 "shopmesh.example/gen/go/shop/inventory/v1"
	orderv1 "shopmesh.example/gen/go/shop/order/v1"
	paymentv1 "shopmesh.example/gen/go/shop/payment/v1"
)

func TestDiscoverReadsTheRunDirectoryAndTheEnvironmentOverridesIt(t *testing.T) {
	dir := t.TempDir()
	state := `{"replicas": [
		{"service": "catalog", "inbound": "127.0.0.1:1001"},
		{"service": "catalog", "inbound": "127.0.0.1:1002"},
		{"service": "order", "inbound": "127.0.0.1:2001"}]}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	found, err := Discover(dir, []string{"SHOPMESH_UPSTREAM_ORDER=127.0.0.1:3001,127.0.0.1:3002", "HOME=/"})
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoints{
		"catalog": {"127.0.0.1:1001", "127.0.0.1:1002"},
		"order":   {"127.0.0.1:3001", "127.0.0.1:3002"},
	}
	if len(found) != len(want) || !slices.Equal(found["catalog"], want["catalog"]) ||
		!slices.Equal(found["order"], want["order"]) {
		t.Fatalf("Discover = %v, want %v", found, want)
	}
	if none, err := Discover(t.TempDir(), nil); err != nil || len(none) != 0 {
		t.Fatalf("no state.json: %v, %v", none, err)
	}
}

// The deadline every call gets comes from the contract; the Python test
// compares the logged values with mesh.contracts.
func TestCallsGetTheContractsDeadlineUnlessTheCallerSetOne(t *testing.T) {
	for _, method := range []string{
		catalogv1.CatalogService_ListProducts_FullMethodName,
		orderv1.OrderService_PlaceOrder_FullMethodName,
	} {
		timeout := DefaultTimeout(method)
		t.Logf("contract deadline %s %d", method, timeout.Milliseconds())
		if timeout <= 0 {
			t.Fatalf("%s: no deadline in the contract", method)
		}
		var left time.Duration
		invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			deadline, _ := ctx.Deadline()
			left = time.Until(deadline)
			return nil
		}
		if err := contractDeadline(context.Background(), method, nil, nil, nil, invoker); err != nil {
			t.Fatal(err)
		}
		if left <= 0 || left > timeout {
			t.Fatalf("%s: %v left of the contract's %v", method, left, timeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if err := contractDeadline(ctx, method, nil, nil, nil, invoker); err != nil {
			t.Fatal(err)
		}
		if left < time.Hour-time.Minute {
			t.Fatalf("%s: the caller's deadline was replaced: %v left", method, left)
		}
	}
	if DefaultTimeout("/shop.catalog.v1.CatalogService/NoSuchMethod") != 0 {
		t.Fatal("a method the contracts do not have has a deadline")
	}
}

// The shopping trip against a running mesh: SHOPMESH_RUN_DIR names its run
// directory and SHOPMESH_TOKEN a shopper's token (tests/clients/go starts a mesh
// and sets both, in `make test`; by hand: `make up` and `shopmesh token`).
func TestCheckoutThroughTheMesh(t *testing.T) {
	runDir, token := os.Getenv("SHOPMESH_RUN_DIR"), os.Getenv("SHOPMESH_TOKEN")
	if runDir == "" || token == "" {
		t.Skip("no mesh: set SHOPMESH_RUN_DIR and SHOPMESH_TOKEN (tests/clients/go does)")
	}
	id, err := LoadIdentity(filepath.Join(runDir, "certs"), Workload)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id.SpiffeID, "/ns/shop/sa/storefront-go") {
		t.Fatalf("identity %s", id.SpiffeID)
	}
	endpoints, err := Discover(runDir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	shop, err := Open(id, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	ctx := context.Background()
	shopper := subject(t, token)

	// Browsing is anonymous: no token.
	listing, err := shop.Catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	products := listing.GetProducts()
	if len(products) != 5 || !slices.IsSortedFunc(products, func(a, b *catalogv1.Product) int {
		return strings.Compare(a.GetId(), b.GetId())
	}) {
		t.Fatalf("listed %d products, want 5 ordered by id", len(products))
	}
	cart := Cart{
		Items: []*orderv1.OrderItem{{ProductId: products[2].GetId(), Quantity: 3}},
		ShipTo: &postaladdress.PostalAddress{
			RegionCode: "US", AddressLines: []string{"1 Main St"}, Recipients: []string{"Go Shopper"},
		},
		Payment: &paymentv1.PaymentMethod{
			Kind: &paymentv1.PaymentMethod_Card{Card: &paymentv1.CardToken{Token: "tok_visa"}},
		},
	}

	order, err := shop.Checkout(ctx, token, cart)
	if err != nil {
		t.Fatal(err)
	}
	if order.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_CONFIRMED || order.GetCustomerId() != shopper {
		t.Fatalf("order %s: %s for %q, want CONFIRMED for %q (%s)",
			order.GetId(), order.GetStatus(), order.GetCustomerId(), shopper, order.GetFailureReason())
	}
	line := order.GetLines()[0]
	t.Logf("bought order=%s sku=%s quantity=%d", order.GetId(), line.GetSku(), line.GetQuantity())

	// The token's shopper sees their own orders, and only theirs.
	mine, err := shop.Orders.ListOrders(AsEndUser(ctx, token), &orderv1.ListOrdersRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, listed := range mine.GetOrders() {
		if listed.GetCustomerId() != shopper {
			t.Fatalf("listed %s's order %s", listed.GetCustomerId(), listed.GetId())
		}
		ids = append(ids, listed.GetId())
	}
	if !slices.Contains(ids, order.GetId()) {
		t.Fatalf("order %s not among the shopper's orders %v", order.GetId(), ids)
	}

	// Without the shopper's token the order sidecar lets no workload through (RBAC: 403).
	_, err = shop.Checkout(ctx, "", cart)
	wantCode(t, "no token", err, codes.PermissionDenied)
	_, err = shop.Orders.PlaceOrder(AsEndUser(ctx, token), &orderv1.PlaceOrderRequest{
		Items: []*orderv1.OrderItem{{ProductId: products[0].GetId()}}, RequestId: "again",
	})
	wantCode(t, "bad request", err, codes.InvalidArgument)
	violations, info := details(err)
	if info.GetReason() != "INVALID_REQUEST" || info.GetDomain() != "shop.order.v1" {
		t.Fatalf("bad request: ErrorInfo %v", info)
	}
	for _, field := range []string{"items[0].quantity", "shipping_address", "payment_method", "request_id"} {
		if _, named := violations[field]; !named {
			t.Errorf("bad request: no violation for %s in %v", field, violations)
		}
	}
	if violations["request_id"] != "must be a UUID" {
		t.Errorf("request_id: %q", violations["request_id"])
	}
	// A deadline already past: no call is sent (1 ms is enough for a listing here).
	past, cancel := context.WithDeadline(ctx, time.Now())
	defer cancel()
	_, err = shop.Catalog.ListProducts(past, &catalogv1.ListProductsRequest{PageSize: 5})
	wantCode(t, "a deadline already past", err, codes.DeadlineExceeded)

	// The topology lets storefront-go call no inventory RPC: its sidecar refuses.
	inventory, err := Dial(id, "inventory", endpoints["inventory"], "inventory")
	if err != nil {
		t.Fatal(err)
	}
	defer inventory.Close()
	_, err = inventoryv1.NewInventoryServiceClient(inventory).GetStock(ctx,
		&inventoryv1.GetStockRequest{Sku: line.GetSku()})
	wantCode(t, "inventory", err, codes.PermissionDenied)

	// And the client knows the sidecars by their certificates: catalog's is not order's.
	impostor, err := Dial(id, "catalog", endpoints["catalog"], "order")
	if err != nil {
		t.Fatal(err)
	}
	defer impostor.Close()
	_, err = catalogv1.NewCatalogServiceClient(impostor).ListProducts(ctx, &catalogv1.ListProductsRequest{})
	wantCode(t, "catalog as order", err, codes.Unavailable)
	if !strings.Contains(err.Error(), "expected "+id.PeerID("order")) {
		t.Fatalf("wrong peer: %v", err)
	}
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: %v (%v), want %v", what, got, err, want)
	}
}

// details are an error's field violations (field -> description) and ErrorInfo.
func details(err error) (map[string]string, *errdetails.ErrorInfo) {
	violations := map[string]string{}
	var info *errdetails.ErrorInfo
	for _, detail := range status.Convert(err).Details() {
		switch d := detail.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				violations[v.GetField()] = v.GetDescription()
			}
		case *errdetails.ErrorInfo:
			info = d
		}
	}
	return violations, info
}

// subject is the token's `sub` claim, read without verifying it: the mesh verifies.
func subject(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Sub
}
