package challenge

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func BenchmarkParse(b *testing.B) {
	v := `PoP realm="x", nonce="y", ` + entraHeader
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMergeClaims(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MergeClaims(entraClaims, "cp1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtractFromTrailer(b *testing.B) {
	md := metadata.Pairs(MetadataKey, entraHeader)
	err := status.Error(codes.Unauthenticated, "revoked") // no details: read from the trailer
	b.ReportAllocs()
	for b.Loop() {
		if _, e := Extract(err, md); e != nil {
			b.Fatal(e)
		}
	}
}
