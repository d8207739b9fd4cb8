package revocation_test

import (
	"context"
	"fmt"
	"time"

	"github.com/caekit/caekit/revocation"
)

func ExampleMemory() {
	// Times are relative to now: the store forgets events older than its
	// retention, so a fixed date here would stop working once it is past.
	store, err := revocation.NewMemory()
	if err != nil {
		panic(err)
	}
	issued := time.Now().Add(-2 * time.Hour)

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
