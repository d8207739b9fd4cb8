package interceptor

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
)

// Logging fields the interceptors set for go-grpc-middleware v2's logging
// interceptor (see WithoutLoggingFields). The kit's own log lines (WithLogger)
// use the same names.
const (
	// FieldSubject is the token's sub.
	FieldSubject = "caekit.subject"
	// FieldTenant is the token's tid.
	FieldTenant = "caekit.tenant"
	// FieldDecision is "allow" or "deny".
	FieldDecision = "caekit.decision"
	// FieldReason is the denial's reason name ("PASSWORD_CHANGED", ...);
	// "" while a call is allowed.
	FieldReason = "caekit.reason"
)

// hasLoggingFields reports whether ctx carries go-grpc-middleware logging
// fields, i.e. whether a logging interceptor (or anything calling
// logging.InjectFields) runs before this one. It allocates only when it does.
func hasLoggingFields(ctx context.Context) bool { return logging.ExtractFields(ctx) != nil }

// claimFields returns the subject and tenant of claims, "" for nil.
func claimFields(c *Claims) (sub, tid string) {
	if c == nil {
		return "", ""
	}
	return c.Subject, c.TenantID
}

// publishFields makes f visible to a go-grpc-middleware logging interceptor
// placed before this one, and returns the context for the handler.
//
// logging.InjectFields alone would not do: it returns a new context, which
// the handler and interceptors chained after this one see, but an outer
// logging interceptor writes its "finished call" line from its own context.
// When that context carries logging fields, logging.AddFields updates the
// very value both contexts share, so the outer interceptor, the handler and
// later interceptors all see f. It must not race with the logging
// interceptor's reads: the callers only use it on the goroutine of the call,
// before a stream's handler goroutine starts. Without upstream fields the
// fields are injected into the handler's context only when inject is set.
func publishFields(ctx, hctx context.Context, upstream, inject bool, f logging.Fields) context.Context {
	switch {
	case upstream:
		logging.AddFields(ctx, f)
	case inject:
		hctx = logging.InjectFields(hctx, f)
	}
	return hctx
}

// liveField is a logging field value that changes after it was published: a
// stream's decision and reason, which a mid-stream cut turns from allow to
// deny while the logging interceptor may read them from the handler's
// goroutine. It renders through slog.LogValuer and fmt.Stringer.
type liveField struct{ v atomic.Pointer[string] }

func newLiveField(s string) *liveField {
	f := new(liveField)
	f.set(s)
	return f
}

func (f *liveField) set(s string) { f.v.Store(&s) }

// String returns the current value.
func (f *liveField) String() string {
	if p := f.v.Load(); p != nil {
		return *p
	}
	return ""
}

// LogValue returns the current value for slog.
func (f *liveField) LogValue() slog.Value { return slog.StringValue(f.String()) }
