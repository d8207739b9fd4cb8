package challenge_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
)

// The two challenges of RFC 9470 §3 (Figures 2 and 3), byte for byte as the
// RFC prints them (https://www.rfc-editor.org/rfc/rfc9470#section-3), and
// Apache Camel's form with an unquoted max_age (CAMEL-27123).
func TestParseRFC9470Examples(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		acr          []string
		maxAge       time.Duration
	}{
		{"rfc9470-fig2", `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"`, []string{"myACR"}, 0},
		{"rfc9470-fig3", `Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"`, nil, 5 * time.Second},
		{"camel-unquoted", `Bearer error="insufficient_user_authentication", error_description="...", acr_values="2", max_age=300`, []string{"2"}, 300 * time.Second},
		{"max_age-zero", `Bearer error="insufficient_user_authentication", max_age="0"`, nil, -1},
		{"several-acr", `Bearer error="insufficient_user_authentication", acr_values="urn:mace:incommon:iap:silver  phr phr"`, []string{"urn:mace:incommon:iap:silver", "phr"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := challenge.Parse(tc.header)
			if err != nil {
				t.Fatal(err)
			}
			if c.Error != challenge.ErrorInsufficientUserAuthentication || !c.StepUp() || c.InsufficientClaims() {
				t.Fatalf("error %q, StepUp %v, InsufficientClaims %v", c.Error, c.StepUp(), c.InsufficientClaims())
			}
			if !reflect.DeepEqual(c.ACRValues, tc.acr) || c.MaxAge != tc.maxAge {
				t.Fatalf("acr_values %q max_age %v, want %q %v", c.ACRValues, c.MaxAge, tc.acr, tc.maxAge)
			}
			if len(c.Params) != 0 {
				t.Fatalf("acr_values/max_age leaked into Params: %v", c.Params)
			}
		})
	}
}

func TestParseRFC9470Rejects(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{`Bearer error="insufficient_user_authentication", max_age="-5"`, "not a number of seconds"},
		{`Bearer error="insufficient_user_authentication", max_age="5m"`, "not a number of seconds"},
		{`Bearer error="insufficient_user_authentication", max_age="99999999999"`, "more than"},
		{`Bearer error="insufficient_user_authentication", acr_values="  "`, "acr_values is empty"},
		{`Bearer error="insufficient_user_authentication", acr_values="` + strings.Repeat("a ", challenge.MaxACRValues+1) + `"`, "limit"},
	} {
		if _, err := challenge.Parse(tc.header); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tc.header, err, tc.want)
		}
	}
	// Without acr_values or max_age the challenge names nothing to ask for.
	c, err := challenge.Parse(`Bearer error="insufficient_user_authentication"`)
	if err != nil || c.StepUp() {
		t.Fatalf("bare challenge: %v, StepUp %v; want parsed and not actionable", err, c.StepUp())
	}
}

func TestHeaderRFC9470Form(t *testing.T) {
	c := &challenge.Challenge{
		Description: "A different authentication level is required",
		ACRValues:   []string{"urn:example:mfa", "bad value", "phr"},
		MaxAge:      300 * time.Second,
		Params:      []challenge.Param{{Name: "resource_metadata", Value: "https://api.example/.well-known/oauth-protected-resource"}, {Name: "max_age", Value: "1"}},
	}
	want := `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:example:mfa phr", max_age="300", resource_metadata="https://api.example/.well-known/oauth-protected-resource"`
	if got := c.Header(); got != want {
		t.Fatalf("Header:\n got %s\nwant %s", got, want)
	}
	// max_age=0 survives the round trip, told apart from "no max_age".
	c = &challenge.Challenge{MaxAge: -1, Realm: "api"}
	if got, want := c.Header(), `Bearer error="insufficient_user_authentication", max_age="0", realm="api"`; got != want {
		t.Fatalf("Header:\n got %s\nwant %s", got, want)
	}
	back, err := challenge.Parse(c.Header())
	if err != nil || back.MaxAge != -1 || back.Realm != "api" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

// The step-up parameters travel in all three copies a gRPC client may see:
// the ClaimsChallenge detail (its www-authenticate copy), the ErrorInfo
// metadata, and the www-authenticate trailer.
func TestStepUpThroughStatus(t *testing.T) {
	c := &challenge.Challenge{ACRValues: []string{"urn:example:mfa"}, MaxAge: 90 * time.Second, Description: "step up"}
	st := c.Status(codes.Unauthenticated, "step up")
	got, ok := challenge.FromError(st.Err())
	if !ok || !got.StepUp() || !reflect.DeepEqual(got.ACRValues, c.ACRValues) || got.MaxAge != c.MaxAge {
		t.Fatalf("from the details: %+v %v", got, ok)
	}
	if info := c.ErrorInfo().GetMetadata(); info["acr_values"] != "urn:example:mfa" || info["max_age"] != "90" || info["error"] != challenge.ErrorInsufficientUserAuthentication {
		t.Fatalf("ErrorInfo metadata %v", info)
	}
	// ErrorInfo alone (a client without caekit's protos in the status).
	onlyInfo, err := codesStatusWithInfo(c)
	if err != nil {
		t.Fatal(err)
	}
	got, ok = challenge.FromError(onlyInfo)
	if !ok || !reflect.DeepEqual(got.ACRValues, c.ACRValues) || got.MaxAge != c.MaxAge {
		t.Fatalf("from ErrorInfo: %+v %v", got, ok)
	}
	// Trailer alone.
	got, ok = challenge.FromError(plainUnauthenticated(), metadata.Pairs(challenge.MetadataKey, c.Header()))
	if !ok || !got.StepUp() || got.MaxAge != c.MaxAge {
		t.Fatalf("from the trailer: %+v %v", got, ok)
	}
}

func codesStatusWithInfo(c *challenge.Challenge) (error, error) {
	st, err := status.New(codes.Unauthenticated, "step up").WithDetails(c.ErrorInfo())
	if err != nil {
		return nil, err
	}
	return st.Err(), nil
}

func plainUnauthenticated() error { return status.Error(codes.Unauthenticated, "step up") }
