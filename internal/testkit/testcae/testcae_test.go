package testcae_test

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/internal/testkit/testcae"
	"github.com/caekit/caekit/internal/testkit/teststore"
	"github.com/caekit/caekit/revocation"
)

// TestMintValidatesAndRevokeNamesTheUser guards the kit's contract: a
// minted token passes the kit's Validator with the claims Claims promises,
// a nil extra removes a claim, and Revoke's event names the object key
// those claims map to.
func TestMintValidatesAndRevokeNamesTheUser(t *testing.T) {
	v := testcae.Validator(t)
	c, err := v.Validate(context.Background(), testcae.Mint(t, "alice", jwt.MapClaims{"sid": "s-1"}))
	if err != nil {
		t.Fatalf("minted token refused: %v", err)
	}
	if c.Subject != "alice" || c.ObjectID != "oid-alice" || c.TenantID != testcae.Tenant || c.SessionID != "s-1" {
		t.Fatalf("claims %+v", c)
	}
	if _, err := v.Validate(context.Background(), testcae.Mint(t, "alice", jwt.MapClaims{"iss": nil})); err == nil {
		t.Fatal("a token whose iss a nil extra removed was accepted")
	}
	store := teststore.Memory(t)
	ev := testcae.Revoke(t, store, "alice")
	if want := revocation.ObjectKey(c.TenantID, c.ObjectID); ev.Subject != want {
		t.Fatalf("Revoke subject %v, want %v", ev.Subject, want)
	}
}
