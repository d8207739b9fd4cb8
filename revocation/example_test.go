package revocation_test

import (
	"context"
	"fmt"
	"time"

	"github.com/caekit/caekit/revocation"
)

func ExampleMemory() {
	store := revocation.NewMemory()
	issued := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

	// The IdP reports a password reset one hour after the token was issued.
	_ = store.Put(context.Background(), revocation.Event{
		ID:      "set-123",
		Type:    revocation.TypePasswordChanged,
		Subject: revocation.ObjectKey("contoso-tenant", "alice-oid"),
		Time:    issued.Add(time.Hour),
	})

	ev, found := store.Lookup(revocation.ObjectKey("contoso-tenant", "alice-oid"))
	fmt.Println(found, ev.Type, ev.Revokes(issued))
	// A token issued after the reset is not affected.
	fmt.Println(ev.Revokes(issued.Add(2 * time.Hour)))
	// Output:
	// true password_changed true
	// false
}
