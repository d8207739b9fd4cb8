package stream_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
	"github.com/caekit/caekit/revocation/ssf/stream"
)

// newClient returns a stream-management client, failing t on an error.
func newClient(t testing.TB, issuer string, opts ...stream.Option) *stream.Client {
	t.Helper()
	c, err := stream.New(issuer, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLegacyRISCStreamAPI: Google's stream API takes and returns delivery as
// {"delivery_method": "https://schemas.openid.net/secevent/risc/delivery-method/push",
// "url": ...} (https://developers.google.com/identity/protocols/risc,
// "Register your receiver"). A Client with WithLegacyRISCAPI writes that
// form; answers are read in either form.
func TestLegacyRISCStreamAPI(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		_, _ = w.Write([]byte(`{"delivery":{"delivery_method":"https://schemas.openid.net/secevent/risc/delivery-method/push","url":"https://rp.example.com/risc"},` +
			`"events_requested":["https://schemas.openid.net/secevent/risc/event-type/account-disabled"]}`))
	}))
	defer srv.Close()
	c := newClient(t, "https://accounts.google.com/", stream.WithBearerToken("service-account-jwt"), stream.WithLegacyRISCAPI(),
		stream.WithConfiguration(&ssf.TransmitterConfiguration{Issuer: "https://accounts.google.com/", ConfigurationEndpoint: srv.URL + "/v1beta/stream:update"}))
	out, err := c.CreateStream(context.Background(), &stream.Config{
		Delivery:        &stream.Delivery{Method: stream.DeliveryPush, EndpointURL: "https://rp.example.com/risc"},
		EventsRequested: []string{ssf.RISCAccountDisabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := got["delivery"].(map[string]any)
	if d["delivery_method"] != "https://schemas.openid.net/secevent/risc/delivery-method/push" || d["url"] != "https://rp.example.com/risc" || d["method"] != nil {
		t.Fatalf("sent delivery %v, want the legacy form", d)
	}
	if out.Delivery == nil || out.Delivery.Method != stream.DeliveryPush || out.Delivery.EndpointURL != "https://rp.example.com/risc" {
		t.Fatalf("read delivery %+v, want push to the url", out.Delivery)
	}
	// Without the option the SSF form is sent.
	plain := newClient(t, "https://accounts.google.com/", stream.WithConfiguration(&ssf.TransmitterConfiguration{ConfigurationEndpoint: srv.URL}))
	if _, err := plain.CreateStream(context.Background(), &stream.Config{Delivery: &stream.Delivery{Method: stream.DeliveryPush, EndpointURL: "https://rp.example.com/risc"}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := got["delivery"].(map[string]any); d["method"] != stream.DeliveryPush || d["endpoint_url"] != "https://rp.example.com/risc" {
		t.Fatalf("SSF form: sent %v", d)
	}
}

func TestPollStreamCreation(t *testing.T) {
	tr := ssftest.New()
	defer tr.Close()
	c := newClient(t, tr.Issuer, stream.WithBearerToken(ssftest.ManagementToken))
	s, err := c.CreateStream(context.Background(), &stream.Config{Delivery: &stream.Delivery{Method: stream.DeliveryPoll}, Audience: stream.Audience{"a", "b"}})
	if err != nil || s.Delivery.EndpointURL != tr.PollURL() || len(s.Audience) != 2 {
		t.Fatalf("%+v %v", s, err)
	}
}
