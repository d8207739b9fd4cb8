package interceptor

import (
	"slices"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

const codeUnavailable = codes.Unavailable

// cut is a denial rendered for the wire: the status (with details) and the
// www-authenticate value ("" when the denial is not a challenge).
//
// st and err are rendered for a call refused at open (cae.v1.Phase
// PHASE_OPEN: the handler never ran); errAt renders the status for the phase
// the call actually ended in.
type cut struct {
	d      *check.Denial
	st     *status.Status
	err    error
	header string
	// ch, code and msg are kept to render the challenge again for another
	// phase; ch is nil for a denial that is not a challenge.
	ch   *challenge.Challenge
	code codes.Code
	msg  string
}

// wirePhase is the cae.v1.Phase a denial in phase p reports to the client:
// PHASE_MID_STREAM once the handler ran, PHASE_OPEN before.
func wirePhase(p AuditPhase) caev1.Phase {
	if p == PhaseMidStream {
		return caev1.Phase_PHASE_MID_STREAM
	}
	return caev1.Phase_PHASE_OPEN
}

// errAt returns the denial's error as sent when the call ends in phase p.
// A stream cut after its handler started says PHASE_MID_STREAM, so that a
// client does not replay messages the handler may already have applied
// (issue 13 item 1).
func (c *cut) errAt(p AuditPhase) error {
	if c.ch == nil || wirePhase(p) == caev1.Phase_PHASE_OPEN {
		return c.err
	}
	return challengeStatus(c.ch, c.code, c.msg, wirePhase(p)).Err()
}

// challengeStatus is ch.Status(code, msg) with the phase set in the
// cae.v1.ClaimsChallenge detail.
func challengeStatus(ch *challenge.Challenge, code codes.Code, msg string, phase caev1.Phase) *status.Status {
	p := ch.Proto()
	p.Phase = phase
	st := status.New(code, msg)
	if withDetails, err := st.WithDetails(p, ch.ErrorInfo()); err == nil {
		return withDetails
	}
	// WithDetails fails only for code OK or an unmarshalable detail; neither
	// applies to a denial, but never lose the status itself.
	return st
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
func (s *Server) newCut(d *check.Denial, claims *Claims) *cut {
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
	if d.Claims == "" && (len(d.ACRValues) > 0 || d.MaxAge != 0) {
		// RFC 9470 step-up: every client gets it, cp1 or not.
		ch.Error = challenge.ErrorInsufficientUserAuthentication
		ch.ACRValues, ch.MaxAge = slices.Clone(d.ACRValues), d.MaxAge
		ch.Params = slices.Clone(d.Params)
	}
	if d.Claims != "" && s.capable(claims) {
		ch.Error = challenge.ErrorInsufficientClaims
		ch.Claims = d.Claims
		if len(d.Params) > 0 {
			ch.Params = slices.Clone(d.Params) // the check may reuse its slice
		}
	}
	s.addResourceMetadata(ch)
	c.ch, c.code, c.msg = ch, code, msg
	c.st = challengeStatus(ch, code, msg, caev1.Phase_PHASE_OPEN)
	c.err = c.st.Err()
	c.header = ch.Header()
	return c
}
