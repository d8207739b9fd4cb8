package challenge_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor/challenge"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

func TestReasonName(t *testing.T) {
	for v, n := range caev1.Reason_name {
		got := challenge.ReasonName(caev1.Reason(v))
		if got != strings.TrimPrefix(n, "REASON_") || strings.ToUpper(got) != got {
			t.Errorf("ReasonName(%s) = %q", n, got)
		}
	}
	if got := challenge.ReasonName(caev1.Reason(9999)); got != "UNSPECIFIED" {
		t.Errorf("unknown reason: %q", got)
	}
}

func TestStatusCarriesBothDetails(t *testing.T) {
	ev := time.Unix(1700000000, 0) //datelint:ok a detail field carried as data
	c := &challenge.Challenge{
		AuthorizationURI: "https://login.example/authorize",
		Claims:           challenge.NotBeforeClaims(ev),
		Reason:           caev1.Reason_REASON_PASSWORD_CHANGED,
		EventTime:        ev,
		EventID:          "evt-1",
		Description:      "token revoked",
	}
	st := c.Status(codes.Unauthenticated, "token revoked")
	if st.Code() != codes.Unauthenticated || st.Message() != "token revoked" {
		t.Fatalf("status %v", st)
	}
	var cc *caev1.ClaimsChallenge
	var ei *errdetails.ErrorInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *caev1.ClaimsChallenge:
			cc = d
		case *errdetails.ErrorInfo:
			ei = d
		}
	}
	if cc == nil || ei == nil {
		t.Fatalf("details %v", st.Details())
	}
	if cc.GetWwwAuthenticate() != c.Header() || cc.GetClaims() != c.Claims || cc.GetError() != "insufficient_claims" ||
		cc.GetReason() != caev1.Reason_REASON_PASSWORD_CHANGED || !cc.GetEventTime().AsTime().Equal(ev) ||
		cc.GetEventId() != "evt-1" || cc.GetErrorDescription() != "token revoked" || cc.GetAuthorizationUri() != c.AuthorizationURI {
		t.Fatalf("ClaimsChallenge %v", cc)
	}
	if ei.GetReason() != "PASSWORD_CHANGED" || ei.GetDomain() != challenge.ErrorInfoDomain {
		t.Fatalf("ErrorInfo %v", ei)
	}
	md := ei.GetMetadata()
	want := map[string]string{
		"error":             "insufficient_claims",
		"claims":            c.EncodedClaims(),
		"authorization_uri": "https://login.example/authorize",
		"event_time":        "1700000000",
		"event_id":          "evt-1",
	}
	if len(md) != len(want) {
		t.Fatalf("metadata %v", md)
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata[%s] = %q, want %q", k, md[k], v)
		}
	}
}

func TestErrorInfoInvalidTokenHasNoClaims(t *testing.T) {
	c := &challenge.Challenge{Error: challenge.ErrorInvalidToken, Reason: caev1.Reason_REASON_TOKEN_INVALID}
	ei := c.ErrorInfo()
	if _, ok := ei.GetMetadata()["claims"]; ok {
		t.Fatalf("claims present: %v", ei)
	}
	if ei.GetReason() != "TOKEN_INVALID" || ei.GetMetadata()["error"] != "invalid_token" {
		t.Fatalf("ErrorInfo %v", ei)
	}
	if p := c.Proto(); p.GetEventTime() != nil || p.GetClaims() != "" {
		t.Fatalf("proto %v", p)
	}
}
