package server_test

import (
	"testing"

	"github.com/caekit/caekit/policy"
)

// The example policy file shipped next to cmd server must stay valid.
func TestExamplePolicyFile(t *testing.T) {
	p, err := policy.LoadFile("../../server/policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 2 || len(p.Locations) != 2 {
		t.Fatalf("%+v", p)
	}
}
