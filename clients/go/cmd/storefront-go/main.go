// storefront-go: one checkout through the mesh, as the Go storefront backend
// does it for a signed-in shopper, printed as JSON.
//
//	go run ./cmd/storefront-go --run-dir ../../var/mesh \
//	    --token "$(../../.venv/bin/shopmesh token --customer ada --run-dir ../../var/mesh)"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/genproto/googleapis/type/postaladdress"
	"google.golang.org/protobuf/encoding/protojson"

	catalogv1 "shopmesh.example/gen/go/shop/catalog/v1"
	orderv1 "shopmesh.example/gen/go/shop/order/v1"
	paymentv1 "shopmesh.example/gen/go/shop/payment/v1"

	"shopmesh.example/clients/go/storefront"
)

func main() {
	runDir := flag.String("run-dir", envOr("SHOPMESH_RUN_DIR", "var/mesh"), "the local mesh's run directory")
	workload := flag.String("workload", storefront.Workload, "the identity to call as (a certificate in <run-dir>/certs)")
	token := flag.String("token", os.Getenv("SHOPMESH_TOKEN"), "the shopper's token (shopmesh token --customer NAME)")
	product := flag.String("product", "", "the product to buy (default: the first the catalog lists)")
	quantity := flag.Int("quantity", 1, "how many")
	card := flag.String("card", "tok_visa", "the card token to pay with")
	flag.Parse()
	if err := run(*runDir, *workload, *token, *product, int32(*quantity), *card); err != nil {
		fmt.Fprintf(os.Stderr, "storefront-go: %v\n", err)
		os.Exit(1)
	}
}

func run(runDir, workload, token, product string, quantity int32, card string) error {
	if token == "" {
		return errors.New("no shopper's token: --token or SHOPMESH_TOKEN (shopmesh token --customer NAME)")
	}
	id, err := storefront.LoadIdentity(filepath.Join(runDir, "certs"), workload)
	if err != nil {
		return err
	}
	endpoints, err := storefront.Discover(runDir, os.Environ())
	if err != nil {
		return err
	}
	shop, err := storefront.Open(id, endpoints)
	if err != nil {
		return err
	}
	defer shop.Close()
	ctx := context.Background()
	if product == "" {
		listing, err := shop.Catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 1})
		if err != nil {
			return err
		}
		if len(listing.GetProducts()) == 0 {
			return errors.New("the catalog lists no product")
		}
		product = listing.GetProducts()[0].GetId()
	}
	order, err := shop.Checkout(ctx, token, storefront.Cart{
		Items: []*orderv1.OrderItem{{ProductId: product, Quantity: quantity}},
		ShipTo: &postaladdress.PostalAddress{
			RegionCode: "US", AddressLines: []string{"1 Main St"}, Recipients: []string{"Go Shopper"},
		},
		Payment: &paymentv1.PaymentMethod{
			Kind: &paymentv1.PaymentMethod_Card{Card: &paymentv1.CardToken{Token: card}},
		},
	})
	if err != nil {
		return err
	}
	fmt.Println(protojson.Format(order))
	if order.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_CONFIRMED {
		return fmt.Errorf("order %s is %s: %s", order.GetId(), order.GetStatus(), order.GetFailureReason())
	}
	return nil
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
