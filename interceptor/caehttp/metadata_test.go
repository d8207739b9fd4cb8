package caehttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/caehttp"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/internal/testkit"
	"github.com/caekit/caekit/internal/testkit/testcae"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// The metadata URL of the resource https://api.example/v1: the well-known
// path goes between the host and the path (RFC 9728 §3.1).
const (
	testResource    = "https://api.example/v1"
	testMetadataURL = "https://api.example/.well-known/oauth-protected-resource/v1"
)

// TestResourceMetadataDocument guards the RFC 9728 §2/§3 document: resource
// derived from the server's metadata URL, authorization_servers from the
// validator's issuers, bearer_methods_supported ["header"], served as
// application/json on GET only.
func TestResourceMetadataDocument(t *testing.T) {
	e := newEnv(t, interceptor.WithResourceMetadata(testMetadataURL))
	doc, h, err := caehttp.ProtectedResourceMetadata(e.srv, caehttp.WithScopes("inbox.read"))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Resource != testResource {
		t.Fatalf("resource %q, want %q", doc.Resource, testResource)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + caehttp.WellKnownPath + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                 testResource,
		"authorization_servers":    []any{testcae.Issuer},
		"scopes_supported":         []any{"inbox.read"},
		"bearer_methods_supported": []any{"header"},
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("document\n %s\nwant\n %s", gb, wb)
	}
	post, err := ts.Client().Post(ts.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed || post.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d, Allow %q", post.StatusCode, post.Header.Get("Allow"))
	}

	over, _, err := caehttp.ProtectedResourceMetadata(e.srv,
		caehttp.WithAuthorizationServers("https://idp.example"), caehttp.WithSigningAlgorithms("ES256"))
	if err != nil {
		t.Fatal(err)
	}
	if over.AuthorizationServers[0] != "https://idp.example" || over.ResourceSigningAlgValuesSupported[0] != "ES256" {
		t.Fatalf("overrides: %+v", over)
	}
}

// TestResourceMetadataErrors guards the refusals: each bad input named.
func TestResourceMetadataErrors(t *testing.T) {
	plain := newEnv(t)
	withURL := newEnv(t, interceptor.WithResourceMetadata(testMetadataURL))
	for _, tc := range []struct {
		name string
		srv  *interceptor.Server
		opts []caehttp.MetadataOption
		want string
	}{
		{"no resource", plain.srv, nil, "no resource identifier"},
		{"http resource", plain.srv, []caehttp.MetadataOption{caehttp.WithResource("http://api.example/v1")}, "must use https"},
		{"fragment", plain.srv, []caehttp.MetadataOption{caehttp.WithResource("https://api.example/v1#x")}, "fragment"},
		{"mismatch", withURL.srv, []caehttp.MetadataOption{caehttp.WithResource("https://api.example/v2")}, "RFC 9728 §3.1"},
		{"none alg", plain.srv, []caehttp.MetadataOption{caehttp.WithResource(testResource), caehttp.WithSigningAlgorithms("none")}, `"none"`},
		{"relative AS", plain.srv, []caehttp.MetadataOption{caehttp.WithResource(testResource), caehttp.WithAuthorizationServers("idp")}, "not an absolute URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := caehttp.ProtectedResourceMetadata(tc.srv, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := interceptor.New(testcae.Validator(t), interceptor.WithResourceMetadata("http://api.example/x")); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http metadata URL: %v", err)
	}
	if got := caehttp.MetadataURL("https://api.example/"); got != "https://api.example/.well-known/oauth-protected-resource" {
		t.Fatalf("MetadataURL of a host-only resource: %q", got)
	}
}

// TestResourceMetadataInEveryChallenge guards RFC 9728 §5.1 on both
// surfaces: with WithResourceMetadata every challenge (a revocation's
// insufficient_claims and a missing token's invalid_token) carries
// resource_metadata, in the HTTP header, the gRPC trailer and the
// cae.v1.ClaimsChallenge detail, and the challenge parser reads it back.
func TestResourceMetadataInEveryChallenge(t *testing.T) {
	e := newEnv(t, interceptor.WithResourceMetadata(testMetadataURL))
	url, c := serve(t, e.srv, hello, false)
	gs := grpc.NewServer(e.srv.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(gs, testkit.NewInbox())
	client := inboxv1.NewInboxServiceClient(testkit.ServeBufconn(t, gs))

	tok := mint(t, "hank", nil)
	e.revoke(t, "hank")
	for _, tk := range []string{tok, ""} {
		resp := get(t, c, url+"/v1/messages/1", tk)
		resp.Body.Close()
		h := resp.Header.Values("WWW-Authenticate")
		ch, err := challenge.Parse(h...)
		if err != nil || ch.ResourceMetadata() != testMetadataURL {
			t.Fatalf("HTTP challenge %q: %v, resource_metadata %q", h, err, ch.ResourceMetadata())
		}
		if !strings.Contains(h[0], `resource_metadata="`+testMetadataURL+`"`) {
			t.Fatalf("HTTP challenge %q lacks the quoted parameter", h[0])
		}

		var trailer metadata.MD
		ctx := context.Background()
		if tk != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tk)
		}
		_, err = client.GetMessage(ctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Trailer(&trailer))
		got := trailer.Get(challenge.MetadataKey)
		if tk != "" && (len(got) != 1 || got[0] != h[0]) {
			t.Fatalf("gRPC trailer %q, want the HTTP header %q", got, h[0])
		}
		// A missing token's description names the transport's credential
		// (header or metadata); the parameter is there all the same.
		if gch, err := challenge.Parse(got...); err != nil || gch.ResourceMetadata() != testMetadataURL {
			t.Fatalf("gRPC challenge %q: %v", got, err)
		}
		var detail *caev1.ClaimsChallenge
		for _, d := range status.Convert(err).Details() {
			if p, ok := d.(*caev1.ClaimsChallenge); ok {
				detail = p
			}
		}
		if detail == nil || detail.GetWwwAuthenticate() != got[0] {
			t.Fatalf("ClaimsChallenge detail %v, want www_authenticate %q", detail, got[0])
		}
	}
}

func ExampleProtectedResourceMetadata() {
	v := exampleValidator()
	defer v.Close()
	srv, err := interceptor.New(v, interceptor.WithResourceMetadata("https://api.example/.well-known/oauth-protected-resource/v1"))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	_, h, err := caehttp.ProtectedResourceMetadata(srv, caehttp.WithScopes("inbox.read"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+caehttp.WellKnownPath+"/v1", h) // outside the middleware: no token needed

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://api.example"+caehttp.WellKnownPath+"/v1", nil))
	b, _ := io.ReadAll(rec.Body)
	fmt.Println(string(b))
	// Output:
	// {"resource":"https://api.example/v1","authorization_servers":["https://login.example/tenant-1/v2.0"],"scopes_supported":["inbox.read"],"bearer_methods_supported":["header"]}
}
