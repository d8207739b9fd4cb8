package interceptor

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

const codeUnavailable = codes.Unavailable

// cut is a denial rendered for the wire: the status (with details) and the
// www-authenticate value ("" when the denial is not a challenge).
type cut struct {
	d      *Denial
	st     *status.Status
	err    error
	header string
}

func reasonName(r caev1.Reason) string { return challenge.ReasonName(r) }

// newCut renders d for a caller holding claims (nil when the token did not
// validate).
//
// An Unauthenticated denial, or any denial with claims, is a challenge: it
// carries cae.v1.ClaimsChallenge and google.rpc.ErrorInfo details and a
// www-authenticate value. It is an insufficient_claims challenge with the
// denial's claims when the caller is capable (or WithChallengeAll), else an
// invalid_token rejection without claims. Other denials (Unavailable when the
// revocation state is stale) carry only an ErrorInfo.
func (s *Server) newCut(d *Denial, claims *Claims) *cut {
	code := d.Code
	if code == codes.OK {
		code = codes.Unauthenticated
	}
	msg := d.Description
	if msg == "" {
		msg = "access denied: " + reasonName(d.Reason)
	}
	c := &cut{d: d}
	if code != codes.Unauthenticated && d.Claims == "" {
		st := status.New(code, msg)
		if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
			Reason: reasonName(d.Reason),
			Domain: challenge.ErrorInfoDomain,
		}); err == nil {
			st = withInfo
		}
		c.st, c.err = st, st.Err()
		return c
	}
	ch := &challenge.Challenge{
		Scheme:           challenge.DefaultScheme,
		Error:            challenge.ErrorInvalidToken,
		AuthorizationURI: s.o.authzURI,
		Realm:            s.o.realm,
		Reason:           d.Reason,
		EventTime:        d.EventTime,
		EventID:          d.EventID,
		Description:      d.Description,
	}
	if d.Claims != "" && s.capable(claims) {
		ch.Error = challenge.ErrorInsufficientClaims
		ch.Claims = d.Claims
		if len(d.Params) > 0 {
			ch.Params = make([]challenge.Param, len(d.Params))
			for i, p := range d.Params {
				ch.Params[i] = challenge.Param(p)
			}
		}
	}
	c.st = ch.Status(code, msg)
	c.err = c.st.Err()
	c.header = ch.Header()
	return c
}
