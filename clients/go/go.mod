// The Go storefront backend (storefront-go): a client of the mesh from the stubs
// in gen/go, a local module (nobody `go install`s this one, so `replace` is fine).
module shopmesh.example/clients/go

go 1.26.0

replace shopmesh.example/gen/go => ../../gen/go

require (
	google.golang.org/genproto v0.0.0-20261026165753-2ffab32bce7e
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
	shopmesh.example/gen/go v0.0.0-00010101000000-000000000000
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261019180522-ce908d29299b // indirect
)
