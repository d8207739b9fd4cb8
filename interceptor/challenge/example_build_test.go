package challenge_test

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/caekit/caekit/interceptor/challenge"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// A server answering a revoked token: the www-authenticate value and the
// status that carries the same challenge as typed details.
func ExampleChallenge_Header() {
	ev := time.Unix(1604106651, 0) //datelint:ok Entra's documented challenge value, encoded as data
	c := &challenge.Challenge{
		AuthorizationURI: "https://login.microsoftonline.com/common/oauth2/authorize",
		Claims:           challenge.NotBeforeClaims(ev),
		Reason:           caev1.Reason_REASON_USER_DISABLED,
		EventTime:        ev,
	}
	fmt.Println(c.Header())
	st := c.Status(codes.Unauthenticated, "token revoked")
	fmt.Println(st.Code(), len(st.Details()), c.ErrorInfo().GetReason())
	// Output:
	// Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNjA0MTA2NjUxIn19fQ=="
	// Unauthenticated 2 USER_DISABLED
}

// An RFC 9470 step-up challenge: the resource wants a multi-factor
// authentication no older than five minutes.
func ExampleChallenge_Header_stepUp() {
	c := &challenge.Challenge{
		Description: "A different authentication level is required",
		ACRValues:   []string{"urn:example:mfa"},
		MaxAge:      5 * time.Minute,
	}
	fmt.Println(c.Header())
	back, _ := challenge.Parse(c.Header())
	fmt.Println(back.StepUp(), back.ACRValues, back.MaxAge)
	// Output:
	// Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:example:mfa", max_age="300"
	// true [urn:example:mfa] 5m0s
}
