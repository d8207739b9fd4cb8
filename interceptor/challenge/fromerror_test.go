package challenge

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"

	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

func statusErr(t *testing.T, code codes.Code, details ...protoadapt.MessageV1) error {
	t.Helper()
	st := status.New(code, "denied")
	if len(details) > 0 {
		var err error
		st, err = st.WithDetails(details...)
		if err != nil {
			t.Fatal(err)
		}
	}
	return st.Err()
}

func TestExtractPreferenceOrder(t *testing.T) {
	evt := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC) //datelint:ok a detail field carried as data
	detail := &caev1.ClaimsChallenge{
		Claims: acrsClaims, Error: ErrorInsufficientClaims, AuthorizationUri: authURI,
		Reason: caev1.Reason_REASON_AUTH_CONTEXT, EventTime: timestamppb.New(evt), EventId: "e1",
		ErrorDescription: "needs c1",
		WwwAuthenticate:  `Bearer realm="", error="insufficient_claims", cc_type="authcontext"`,
	}
	info := &errdetails.ErrorInfo{Reason: "SESSION_REVOKED", Domain: ErrorInfoDomain, Metadata: map[string]string{
		"claims": base64.StdEncoding.EncodeToString([]byte(entraClaims)),
	}}
	hdr := metadata.Pairs(MetadataKey, `Bearer error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(`{"access_token":{"h":1}}`))+`"`)
	trl := metadata.Pairs(MetadataKey, `Bearer error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(`{"access_token":{"t":1}}`))+`"`)

	t.Run("detail wins", func(t *testing.T) {
		c, err := Extract(statusErr(t, codes.Unauthenticated, info, detail), hdr)
		if err != nil {
			t.Fatal(err)
		}
		if c.Claims != acrsClaims || c.Reason != caev1.Reason_REASON_AUTH_CONTEXT || !c.EventTime.Equal(evt) ||
			c.EventID != "e1" || c.Description != "needs c1" || c.AuthorizationURI != authURI {
			t.Fatalf("got %+v", c)
		}
		if len(c.Params) != 1 || c.Params[0] != (Param{"cc_type", "authcontext"}) {
			t.Fatalf("params %v", c.Params)
		}
	})
	t.Run("error info next", func(t *testing.T) {
		c, err := Extract(statusErr(t, codes.Unauthenticated, info), hdr)
		if err != nil {
			t.Fatal(err)
		}
		if c.Claims != entraClaims || c.Reason != caev1.Reason_REASON_SESSION_REVOKED || !c.InsufficientClaims() {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("error info of another domain ignored", func(t *testing.T) {
		other := &errdetails.ErrorInfo{Reason: "X", Domain: "example.com", Metadata: map[string]string{"claims": "e30"}}
		c, err := Extract(statusErr(t, codes.Unauthenticated, other), hdr)
		if err != nil {
			t.Fatal(err)
		}
		if c.Claims != `{"access_token":{"h":1}}` {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("header before trailer", func(t *testing.T) {
		c, err := Extract(statusErr(t, codes.Unauthenticated), hdr, trl)
		if err != nil || c.Claims != `{"access_token":{"h":1}}` {
			t.Fatalf("got %+v %v", c, err)
		}
	})
	t.Run("trailer only", func(t *testing.T) {
		c, err := Extract(statusErr(t, codes.Unauthenticated), nil, trl)
		if err != nil || c.Claims != `{"access_token":{"t":1}}` {
			t.Fatalf("got %+v %v", c, err)
		}
	})
	t.Run("bad detail falls back, error kept when nothing else", func(t *testing.T) {
		bad := &caev1.ClaimsChallenge{Claims: "not json", Error: ErrorInsufficientClaims}
		c, err := Extract(statusErr(t, codes.Unauthenticated, bad), trl)
		if err != nil || c.Claims != `{"access_token":{"t":1}}` {
			t.Fatalf("fallback: %+v %v", c, err)
		}
		_, err = Extract(statusErr(t, codes.Unauthenticated, bad))
		if err == nil || errors.Is(err, ErrNoChallenge) || !strings.Contains(err.Error(), "ClaimsChallenge detail") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("invalid_token has no claims", func(t *testing.T) {
		c, err := Extract(statusErr(t, codes.Unauthenticated, &caev1.ClaimsChallenge{Error: ErrorInvalidToken, Reason: caev1.Reason_REASON_TOKEN_INVALID}))
		if err != nil || c.InsufficientClaims() || c.Error != ErrorInvalidToken {
			t.Fatalf("got %+v %v", c, err)
		}
	})
	t.Run("not a challenge", func(t *testing.T) {
		for _, err := range []error{
			nil,
			errors.New("plain"),
			statusErr(t, codes.PermissionDenied, detail),
			statusErr(t, codes.Unauthenticated),
		} {
			if _, e := Extract(err, metadata.Pairs("x", "y")); !errors.Is(e, ErrNoChallenge) {
				t.Fatalf("Extract(%v) = %v, want ErrNoChallenge", err, e)
			}
		}
	})
	t.Run("unparsable header", func(t *testing.T) {
		_, err := Extract(statusErr(t, codes.Unauthenticated), metadata.Pairs(MetadataKey, `Bearer realm="`))
		if err == nil || errors.Is(err, ErrNoChallenge) {
			t.Fatalf("err = %v", err)
		}
	})
}
