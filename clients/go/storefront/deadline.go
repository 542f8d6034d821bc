package storefront

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	meshv1 "shopmesh.example/gen/go/shop/mesh/v1"
)

// DefaultTimeout is the method's deadline from its contract,
// `(shop.mesh.v1.policy).timeout_ms`, read from the generated descriptors as
// every client of the mesh reads it; 0 if the contract sets none.
// fullMethod is the gRPC path: "/shop.catalog.v1.CatalogService/GetProduct".
func DefaultTimeout(fullMethod string) time.Duration {
	service, method, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return 0
	}
	found, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return 0
	}
	descriptor, ok := found.(protoreflect.ServiceDescriptor)
	if !ok || descriptor.Methods().ByName(protoreflect.Name(method)) == nil {
		return 0
	}
	options := descriptor.Methods().ByName(protoreflect.Name(method)).Options()
	policy, _ := proto.GetExtension(options, meshv1.E_Policy).(*meshv1.MethodPolicy)
	return time.Duration(policy.GetTimeoutMs()) * time.Millisecond
}

// contractDeadline gives every call the contract's deadline unless the caller set one.
func contractDeadline(
	ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption,
) error {
	if _, set := ctx.Deadline(); !set {
		if timeout := DefaultTimeout(method); timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
