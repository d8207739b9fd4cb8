// Package quickstart holds, as Example functions in its tests, the README's
// quick starts, one per surface (gRPC server and client, net/http
// middleware, HTTP RoundTripper, Connect server and client, RFC 9728
// metadata, RFC 9470 policy rule), so that go vet and go test compile
// them; TestReadmeQuickStarts checks that every README snippet appears
// in them.
package quickstart
