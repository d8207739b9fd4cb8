package receiver_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// A receiver discovers a transmitter's keys from its ssf-configuration, serves
// RFC 8935 push, and stores the events it receives.
func Example() {
	tr := ssftest.New() // a test transmitter on loopback
	defer tr.Close()

	store, err := revocation.NewMemory()
	if err != nil {
		panic(err)
	}
	r, err := receiver.New(context.Background(),
		receiver.WithIssuer(tr.Issuer),
		receiver.WithAudience(ssftest.Audience),
		receiver.WithStore(store),
		receiver.WithPushAuthorization("Bearer secret"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	srv := httptest.NewServer(r) // in production: mux.Handle("/ssf/push", r)
	defer srv.Close()

	set, _ := tr.Event(ssf.CAEPSessionRevoked, nil, map[string]any{"format": "opaque", "id": "session-1"})
	status, _, _ := ssftest.Push(context.Background(), srv.URL, "Bearer secret", set)
	fmt.Println("push:", status)

	ev, ok := store.Lookup(revocation.SessionKey(tr.Issuer, "session-1"))
	fmt.Println("revoked:", ok, ev.Type)

	status, _, _ = ssftest.Push(context.Background(), srv.URL, "Bearer secret", set)
	fmt.Println("redelivery:", status)
	// Output:
	// push: 202
	// revoked: true session_revoked
	// redelivery: 202
}

// DefaultMapper maps subject identifiers onto the revocation keys built from
// token claims.
func ExampleDefaultMapper() {
	s, _ := ssf.ParseSubject([]byte(`{"format":"complex",
		"user":{"format":"iss_sub","iss":"https://idp","sub":"alice"},
		"session":{"format":"opaque","id":"sid-1"}}`))
	keys, _ := ssf.DefaultMapper{}.MapSubject(&ssf.SET{Issuer: "https://tr"}, s)
	fmt.Println(keys)

	s, _ = ssf.ParseSubject([]byte(`{"format":"opaque","id":"oid-1"}`))
	keys, _ = ssf.DefaultMapper{OpaqueTenant: "tid-1"}.MapSubject(&ssf.SET{Issuer: "https://tr"}, s)
	fmt.Println(keys)
	// Output:
	// [session:https://tr:sid-1]
	// [object:tid-1:oid-1]
}
