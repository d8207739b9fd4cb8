package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/token"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
)

// Outcomes in the decision log.
const (
	OutcomeAllow     = "allow"     // caekit let the call in
	OutcomeChallenge = "challenge" // denied with a claims challenge (cp1 client)
	OutcomeDeny      = "deny"      // denied without a challenge
	OutcomeCut       = "cut"       // an allowed stream ended by caekit (event, expiry, re-check)
	OutcomeExempt    = "exempt"    // health, reflection
)

// decisionLog writes one line per call: method, subject, outcome, reason.
// It sits outside caekit's interceptors and learns the subject of allowed
// calls from tapUnary/tapStream, which sit inside. The token itself is never
// logged, only its hash prefix.
type decisionLog struct {
	log       *slog.Logger
	validator *token.Validator
}

type tapKey struct{}

type tap struct {
	allowed bool
	subject string
	hash    string
	ctx     context.Context // the let-in call's context (HTTP: its cause says why it was cut)
}

func tapUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	markCtx(ctx)
	return h(ctx, req)
}

func tapStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	markCtx(ss.Context())
	return h(srv, ss)
}

// markCtx records, from inside caekit, that the call of ctx was let in,
// and by whom.
func markCtx(ctx context.Context) {
	t, ok := ctx.Value(tapKey{}).(*tap)
	if !ok {
		return
	}
	t.allowed, t.ctx = true, ctx
	if c, ok := interceptor.ClaimsFromContext(ctx); ok {
		t.subject, t.hash = c.Subject, c.Hash
	}
}

type tappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the call's context with the decision log's tap added.
func (s tappedStream) Context() context.Context { return s.ctx }

func (d *decisionLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	t := &tap{}
	start := time.Now()
	resp, err := h(context.WithValue(ctx, tapKey{}, t), req)
	d.write(ctx, info.FullMethod, t, err, time.Since(start), false)
	return resp, err
}

func (d *decisionLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	t := &tap{}
	start := time.Now()
	err := h(srv, tappedStream{ss, context.WithValue(ss.Context(), tapKey{}, t)})
	d.write(ss.Context(), info.FullMethod, t, err, time.Since(start), true)
	return err
}

func (d *decisionLog) write(ctx context.Context, method string, t *tap, err error, took time.Duration, stream bool) {
	reason := reasonOf(err)
	ch, xerr := challenge.Extract(err)
	isCAE := xerr == nil
	code := status.Code(err)
	outcome, level := classify(t, reason, isCAE && (ch.InsufficientClaims() || ch.StepUp()), code == codes.Unauthenticated || code == codes.PermissionDenied, stream)
	d.line(ctx, level, method, t, outcome, reason, code.String(), took, func() []string {
		return metadata.ValueFromIncomingContext(ctx, "authorization")
	})
}

// classify names a call's outcome for the decision log, whatever its
// surface: let in (cut if a let-in stream ended with a caekit reason),
// challenged, denied, or exempt (never seen by caekit).
func classify(t *tap, reason string, challenged, refused, stream bool) (string, slog.Level) {
	switch {
	case t.allowed && reason != "" && stream:
		return OutcomeCut, slog.LevelInfo
	case t.allowed:
		// allowed; the handler's own result is reported as code
		return OutcomeAllow, slog.LevelInfo
	case challenged:
		return OutcomeChallenge, slog.LevelInfo
	case reason != "" || refused:
		return OutcomeDeny, slog.LevelInfo
	}
	return OutcomeExempt, slog.LevelDebug
}

// line writes one decision line. auth returns the call's Authorization
// values, read only for a refused call (to name its caller).
func (d *decisionLog) line(ctx context.Context, level slog.Level, method string, t *tap, outcome, reason, code string, took time.Duration, auth func() []string) {
	if !d.log.Enabled(ctx, level) {
		return
	}
	sub, hash := t.subject, t.hash
	if !t.allowed && outcome != OutcomeExempt {
		sub, hash = d.identify(ctx, auth())
	}
	if sub == "" {
		sub = "-"
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("subject", sub),
		slog.String("outcome", outcome),
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	attrs = append(attrs, slog.String("code", code))
	if hash != "" {
		attrs = append(attrs, slog.String("token", hash))
	}
	attrs = append(attrs, slog.Duration("took", took))
	d.log.LogAttrs(ctx, level, "decision", attrs...)
}

// identify names the caller of a denied call from its token, if the token
// still verifies (a revoked or policy-denied token does; a forged one does not).
func (d *decisionLog) identify(ctx context.Context, vals []string) (sub, hash string) {
	if len(vals) != 1 {
		return "", ""
	}
	raw, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok || raw == "" {
		return "", ""
	}
	hash = token.Hash(raw)
	if d.validator == nil {
		return "", hash
	}
	c, err := d.validator.Validate(ctx, raw)
	if err != nil {
		return "", hash
	}
	return c.Subject, hash
}

// reasonOf returns the caekit reason carried by a status error's details, or "".
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	st, _ := status.FromError(err)
	for _, det := range st.Details() {
		switch d := det.(type) {
		case *caev1.ClaimsChallenge:
			return challenge.ReasonName(d.GetReason())
		case *errdetails.ErrorInfo:
			if d.GetDomain() == challenge.ErrorInfoDomain {
				return d.GetReason()
			}
		}
	}
	return ""
}
