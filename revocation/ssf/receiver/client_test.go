package receiver_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
	"github.com/caekit/caekit/revocation/ssf/stream"
)

func TestStreamManagementAndVerification(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := newClient(t, e.tr.Issuer, stream.WithBearerToken(ssftest.ManagementToken))
	tc, err := c.Configuration(ctx)
	if err != nil || tc.JWKSURI != e.tr.Issuer+"/jwks" || len(tc.DeliveryMethodsSupported) != 2 {
		t.Fatalf("configuration: %+v %v", tc, err)
	}
	s, err := c.CreateStream(ctx, &stream.Config{
		Delivery:        &stream.Delivery{Method: stream.DeliveryPush, EndpointURL: e.srv.URL, AuthorizationHeader: pushAuth},
		EventsRequested: []string{ssf.CAEPSessionRevoked},
		Description:     "test",
	})
	if err != nil || s.StreamID == "" || s.Issuer != e.tr.Issuer {
		t.Fatalf("create: %+v %v", s, err)
	}
	if _, err := c.CreateStream(ctx, &stream.Config{}); !isStatus(err, http.StatusConflict) {
		t.Fatalf("second create: %v", err)
	}
	got, err := c.GetStream(ctx, s.StreamID)
	if err != nil || got.Delivery.EndpointURL != e.srv.URL || got.Description != "test" {
		t.Fatalf("get: %+v %v", got, err)
	}
	upd, err := c.UpdateStream(ctx, &stream.Config{StreamID: s.StreamID, Description: "updated"})
	if err != nil || upd.Description != "updated" || upd.Delivery == nil {
		t.Fatalf("update: %+v %v", upd, err)
	}
	st, err := c.Status(ctx, s.StreamID)
	if err != nil || st.Status != "enabled" {
		t.Fatalf("status: %+v %v", st, err)
	}

	// Verify: the transmitter pushes a verification event with our state.
	state, err := c.Verify(ctx, s.StreamID, e.r)
	if err != nil || state == "" {
		t.Fatal(err)
	}
	if pr := e.tr.PushResponses(); len(pr) != 1 || pr[0] != 202 {
		t.Fatalf("verification push answered %v", pr)
	}
	if o := e.obs.last(); o.EventType != ssf.SSFVerification || o.Outcome != receiver.OutcomeRecorded {
		t.Fatalf("observation %+v", o)
	}
	// A state we never asked for is refused with invalid_state.
	if err := c.RequestVerification(ctx, s.StreamID, "forged-state"); err != nil {
		t.Fatal(err)
	}
	if pr := e.tr.PushResponses(); len(pr) != 2 || pr[1] != 400 {
		t.Fatalf("wrong-state push answered %v", pr)
	}
	if o := e.obs.last(); o.Code != receiver.CodeInvalidState {
		t.Fatalf("observation %+v", o)
	}

	if err := c.DeleteStream(ctx, s.StreamID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetStream(ctx, s.StreamID); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	// Without credentials: a clear HTTPError.
	anon := newClient(t, e.tr.Issuer)
	if _, err := anon.Status(ctx, "stream-1"); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("anonymous: %v", err)
	}
}

func isStatus(err error, code int) bool {
	var he *ssf.HTTPError
	return errors.As(err, &he) && he.StatusCode == code
}
