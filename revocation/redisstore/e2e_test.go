package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/internal/testkit"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
	"github.com/caekit/caekit/revocation/redisstore/redistest"
)

const (
	e2eIssuer   = "https://login.example/t1/v2.0"
	e2eAudience = "api://inbox"
)

// serve starts one replica: a gRPC server on a loopback port with the CAE
// interceptors over its own Redis-backed store, and a client connection to it.
func serve(t *testing.T, key *ecdsa.PublicKey, store *redisstore.Store) inboxv1.InboxServiceClient {
	t.Helper()
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer(e2eIssuer), token.WithAudience(e2eAudience), token.WithStaticKey("k1", key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	cae, err := interceptor.New(v, interceptor.WithStore(store),
		interceptor.WithAuthorizationURI("https://login.example/authorize"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cae.Close() })
	srv := grpc.NewServer(cae.ServerOptions()...)
	inboxv1.RegisterInboxServiceServer(srv, &testkit.Inbox{})
	return inboxv1.NewInboxServiceClient(testkit.ServeGRPC(t, srv))
}

// Three gRPC servers share one Redis: a revocation written through one
// replica's store makes calls to the other two fail with Unauthenticated and
// a claims challenge; when Redis goes away, the fail-closed replicas answer
// Unavailable.
func TestEndToEndThreeServers(t *testing.T) {
	srv := redistest.Start(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stores := []*redisstore.Store{open(t, srv.URL()), open(t, srv.URL()), open(t, srv.URL())}
	clients := make([]inboxv1.InboxServiceClient, len(stores))
	for i, s := range stores {
		clients[i] = serve(t, &key.PublicKey, s)
	}

	now := time.Now()
	raw := testkit.Minter{Alg: "ES256", KID: "k1", Key: key}.Mint(t, jwt.MapClaims{
		"iss": e2eIssuer, "aud": e2eAudience, "sub": "alice", "xms_cc": []string{"cp1"},
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+raw)
	call := func(c inboxv1.InboxServiceClient) (error, metadata.MD) {
		var tr metadata.MD
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.GetMessage(cctx, &inboxv1.GetMessageRequest{Id: "1"}, grpc.Trailer(&tr))
		return err, tr
	}
	for i, c := range clients {
		if err, _ := call(c); err != nil {
			t.Fatalf("replica %d refused a valid token before any event: %v", i, err)
		}
	}

	put(t, stores[0], revocation.Event{
		ID: "set-1", Type: revocation.TypePasswordChanged,
		Subject: revocation.IssuerSubjectKey(e2eIssuer, "alice"), Time: now,
	})
	for i, c := range clients[1:] {
		var last error
		var tr metadata.MD
		testkit.EventuallyWithin(t, waitFor, "replica to refuse the revoked token", func() bool {
			last, tr = call(c)
			return status.Code(last) == codes.Unauthenticated
		})
		wa := strings.Join(tr.Get("www-authenticate"), " ")
		if !strings.Contains(wa, `error="insufficient_claims"`) || !strings.Contains(wa, `claims="`) {
			t.Fatalf("replica %d: www-authenticate = %q, want a claims challenge (err %v)", i+1, wa, last)
		}
	}

	srv.Kill()
	for _, c := range clients {
		testkit.EventuallyWithin(t, waitFor, "replica to fail closed without Redis", func() bool {
			err, _ := call(c)
			return status.Code(err) == codes.Unavailable
		})
	}
}
