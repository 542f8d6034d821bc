// Package storefront is the Go storefront backend of the mesh: a workload with
// its own identity (storefront-go in shopmesh/topology.yaml, so the sidecars'
// RBAC and Istio's AuthorizationPolicy know it) that calls the catalog and
// order services over gRPC with mutual TLS, straight to their sidecars, for the
// shopper whose token it passes on.
package storefront

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/type/postaladdress"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	catalogv1 "shopmesh.example/gen/go/shop/catalog/v1"
	orderv1 "shopmesh.example/gen/go/shop/order/v1"
	paymentv1 "shopmesh.example/gen/go/shop/payment/v1"
)

// Workload is this client's name in the mesh topology.
const Workload = "storefront-go"

// Every replica's sidecar gets calls in turn; a sidecar that fails its
// connection is left out until it is back.
const roundRobin = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// Dial connects to every address of service's sidecars with mTLS as id,
// accepting only peers whose certificate carries the SPIFFE ID of expect
// (service itself, unless a test wants a peer refused). Calls get the
// contract's deadline unless the caller set one.
func Dial(id *Identity, service string, addresses []string, expect string) (*grpc.ClientConn, error) {
	if len(addresses) == 0 {
		return nil, fmt.Errorf("no address for %s: start the mesh or set SHOPMESH_UPSTREAM_%s",
			service, strings.ToUpper(service))
	}
	replicas := manual.NewBuilderWithScheme("mesh")
	state := resolver.State{}
	for _, address := range addresses {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: address})
	}
	replicas.InitialState(state)
	return grpc.NewClient(
		"mesh:///"+service,
		grpc.WithResolvers(replicas),
		grpc.WithTransportCredentials(id.Credentials(expect)),
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithChainUnaryInterceptor(contractDeadline),
		// The name the service has in the cluster, as the sidecars route by it.
		grpc.WithAuthority(service+"."+id.Namespace()+".svc"),
	)
}

// AsEndUser is ctx carrying the end user's token (a JWT) to the calls made
// with it, as `authorization: Bearer <token>`. A storefront backend passes on
// the token its shopper signed in with: every order RPC needs one, and acts
// for the token's subject only. No token, no header: the call is anonymous.
func AsEndUser(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// Shop is the catalog and the order service, as this workload calls them.
type Shop struct {
	Catalog catalogv1.CatalogServiceClient
	Orders  orderv1.OrderServiceClient
	conns   []*grpc.ClientConn
}

// Open dials the catalog's and the order service's sidecars.
func Open(id *Identity, endpoints Endpoints) (*Shop, error) {
	shop := &Shop{}
	for _, service := range []string{"catalog", "order"} {
		conn, err := Dial(id, service, endpoints[service], service)
		if err != nil {
			shop.Close()
			return nil, err
		}
		shop.conns = append(shop.conns, conn)
	}
	shop.Catalog = catalogv1.NewCatalogServiceClient(shop.conns[0])
	shop.Orders = orderv1.NewOrderServiceClient(shop.conns[1])
	return shop, nil
}

// Close closes every connection.
func (s *Shop) Close() {
	for _, conn := range s.conns {
		conn.Close()
	}
}

// Cart is what a shopper checks out.
type Cart struct {
	Items   []*orderv1.OrderItem
	ShipTo  *postaladdress.PostalAddress
	Payment *paymentv1.PaymentMethod
}

// Checkout places the cart as an order of the token's shopper (the order's
// customer is the token's subject). One request id per checkout: sent again,
// the same request returns the same order instead of a second one.
func (s *Shop) Checkout(ctx context.Context, token string, cart Cart) (*orderv1.Order, error) {
	requestID, err := newRequestID()
	if err != nil {
		return nil, err
	}
	placed, err := s.Orders.PlaceOrder(AsEndUser(ctx, token), &orderv1.PlaceOrderRequest{
		Items:           cart.Items,
		ShippingAddress: cart.ShipTo,
		PaymentMethod:   cart.Payment,
		RequestId:       requestID,
	})
	if err != nil {
		return nil, err
	}
	return placed.GetOrder(), nil
}

// newRequestID is a random (version 4) UUID, the form request ids must have.
func newRequestID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
