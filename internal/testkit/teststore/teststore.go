// Package teststore builds the revocation stores that caekit's tests use.
//
// It is test support only, like its parent testkit, and lives apart from it
// because it imports revocation, which testkit must not (see testkit's
// package doc): no package imported by revocation may import teststore from
// its in-package tests.
package teststore

import (
	"testing"

	"github.com/caekit/caekit/revocation"
)

// Memory returns a new revocation.Memory built with opts, failing the test
// at once if the options are invalid.
func Memory(tb testing.TB, opts ...revocation.MemoryOption) *revocation.Memory {
	tb.Helper()
	m, err := revocation.NewMemory(opts...)
	if err != nil {
		tb.Fatalf("revocation.NewMemory: %v", err)
	}
	return m
}
