// Package demo runs caekit's end-to-end demonstration: the development IdP,
// the example server and the example client in one process, on free loopback
// ports, through thirteen steps that show Continuous Access Evaluation at
// work on gRPC and, in steps 12 and 13, on the HTTP front door (an Azure SDK
// pipeline on the REST route, a Server-Sent Events stream).
// cmd examples/demo prints it; the integration test asserts every step.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/caekit/caekit/examples/internal/app"
	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
)

// Options configure Run.
type Options struct {
	// Out receives the narration. Default io.Discard.
	Out io.Writer
	// Color enables ANSI colours.
	Color bool
	// Store is a redis:// URL for step 9; empty skips it.
	Store string
	// Replicas is the number of server replicas in step 9. Default 3.
	Replicas int
	// ServerLog receives the servers' and IdP's logs (the decision log among
	// them), as text. Default: discarded.
	ServerLog io.Writer
	// Only, if set, runs only the steps it names (by number); setup still runs.
	Only []int
}

// Step is the outcome of one demo step, with what was observed.
type Step struct {
	// N is the step's number, from 1.
	N int
	// Name is the step's title.
	Name string
	// OK is true when the step behaved as expected; Skipped when it did not run.
	OK, Skipped bool
	// Problem says what was unexpected.
	Problem string
	// Took is how long the step ran.
	Took time.Duration
	// Lines are the narration's detail lines.
	Lines []string
	// Obs holds what the step observed, for tests.
	Obs Observed
}

// Observed is what a step saw happen.
type Observed struct {
	// Events are the client's recovery events during the step.
	Events []app.Event
	// Err is the error the application got, if any.
	Err error
	// Token is the client's token after the step.
	Token app.TokenInfo
	// Admin is the IdP's answer to the step's admin action, if any.
	Admin *idp.AdminResult
	// CutAfter is, for the stream step, the time from push to end of stream.
	CutAfter time.Duration
	// Received counts stream messages before and after the cut.
	ReceivedBefore, ReceivedAfter int
	// Propagation is, per replica, the time from push to the event being
	// visible in that replica's store (step 9).
	Propagation []time.Duration
	// ReplicaErrs are the results of one call per replica after the event.
	ReplicaEvents [][]app.Event
	// Subject is the subject the server saw on the step's successful call.
	Subject string
	// ChallengeToToken is, for the same-second step, the time from the
	// challenge to the new token (the client's wait for nbf included).
	ChallengeToToken time.Duration
	// HTTPStatuses are, for the Azure SDK step, the statuses of the
	// attempts of the request after the revocation ([401 200]: one retry).
	HTTPStatuses []int
	// CredentialClaims are, for the Azure SDK step, the Claims of every
	// GetToken the SDK made, in order ("" before the challenge).
	CredentialClaims []string
	// Challenge is, for the SSE step, the WWW-Authenticate of the request
	// re-opened with the revoked token.
	Challenge string
}

// Report is the whole run.
type Report struct {
	Steps []Step        // the steps, in order, including skipped ones
	Took  time.Duration // the whole run's duration
}

// OK reports whether every step that ran behaved as expected.
func (r *Report) OK() bool { return r.Failed() == nil }

// Failed returns the first step that did not behave as expected, or nil.
func (r *Report) Failed() *Step {
	for i := range r.Steps {
		if !r.Steps[i].OK && !r.Steps[i].Skipped {
			return &r.Steps[i]
		}
	}
	return nil
}

// env is the running demo.
type env struct {
	opts    Options
	p       printer
	idp     *idp.IdP
	srv     *server.Server
	alice   *app.Client
	pending []app.Event // alice's events peeked during a step
	log     *slog.Logger
	secret  string
	started time.Time
}

// Run starts everything, runs the steps in order and stops everything. It
// returns an error only when the demo could not be set up; a step that
// misbehaves is reported in the Report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	logOut := opts.ServerLog
	if logOut == nil {
		logOut = io.Discard
	}
	e := &env{opts: opts, p: printer{w: opts.Out, color: opts.Color}, started: time.Now()}
	e.log = slog.New(slog.NewTextHandler(&lockedWriter{w: logOut}, nil))
	e.secret = "Bearer " + randomHex(16)

	e.p.title("caekit demo: Continuous Access Evaluation for gRPC and HTTP")
	if err := e.setup(ctx); err != nil {
		e.teardown()
		return nil, err
	}
	rep := &Report{}
	steps := []struct {
		n    int
		name string
		run  func(context.Context, *Step) error
	}{
		{1, "CAE token (24 h, cp1); a call succeeds", e.step1},
		{2, "Sessions revoked: challenged, recovered", e.step2},
		{3, "Password reset: challenged, recovered", e.step3},
		{4, "Open stream cut by an event; reconnected", e.step4},
		{5, "Location policy: challenged, then denied", e.step5},
		{6, "Auth context c1: step-up via challenge", e.step6},
		{7, "User disabled: re-acquiring fails", e.step7},
		{8, "Non-CAE client: 1 h token, plain rejection", e.step8},
		{9, "Redis store: one push, every replica", e.step9},
		{10, "Same second: IdP issues at once; 1 retry", e.step10},
		{11, "Logout of one session; the other kept", e.step11},
		{12, "Azure SDK over REST: challenged, 1 retry", e.step12},
		{13, "SSE stream (net/http) cut by an event", e.step13},
	}
	for _, s := range steps {
		if !e.selected(s.n) {
			continue
		}
		st := Step{N: s.n, Name: s.name}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := s.run(sctx, &st)
		cancel()
		st.Took = time.Since(start)
		var skip errSkip
		switch {
		case errors.As(err, &skip):
			st.Skipped = true
			st.Lines = append(st.Lines, string(skip))
		case err != nil:
			st.Problem = err.Error()
		default:
			st.OK = true
		}
		e.p.step(&st)
		rep.Steps = append(rep.Steps, st)
	}
	e.teardown()
	rep.Took = time.Since(e.started)
	e.p.summary(rep)
	return rep, nil
}

func (e *env) selected(n int) bool {
	if len(e.opts.Only) == 0 {
		return true
	}
	for _, o := range e.opts.Only {
		if o == n {
			return true
		}
	}
	return false
}

// errSkip marks a step that did not run, with the reason.
type errSkip string

// Error returns why the step was skipped.
func (e errSkip) Error() string { return string(e) }

func (e *env) setup(ctx context.Context) error {
	t0 := time.Now()
	var err error
	// The IdP ignores the nbf of a claims request and issues at once (mode
	// b), like most real IdPs: the mode that does not hide the same-second
	// problem (step 10).
	e.idp, err = idp.Listen("127.0.0.1:0", idp.WithPushAuth(e.secret), idp.WithLogger(e.log.With("app", "idp")),
		idp.WithNotBeforeMode(idp.NotBeforeIgnore))
	if err != nil {
		return fmt.Errorf("demo: start IdP: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e.srv, err = server.Start(sctx, server.Config{
		Addr:       "127.0.0.1:0",
		EventsAddr: "127.0.0.1:0",
		Issuer:     e.idp.Issuer(),
		Audience:   e.idp.Audience(),
		HTTPAddr:   "127.0.0.1:0",
		EventsAuth: e.secret,
		Policy:     basePolicy(),
		Logger:     e.log.With("app", "server"),
	})
	if err != nil {
		return fmt.Errorf("demo: start server: %w", err)
	}
	if err := e.idp.SetPushTargets(e.srv.EventsURL()); err != nil {
		return err
	}
	if err := e.idp.SetLogoutTargets([]string{e.srv.BackChannelLogoutURL()}, []string{e.srv.GTRURL()}); err != nil {
		return err
	}
	e.alice, err = e.dial(ctx, "alice", false)
	if err != nil {
		return err
	}
	e.p.detail(fmt.Sprintf("IdP %s (development only) · server %s · HTTP %s · SSF receiver %s · started in %s",
		e.idp.Issuer(), e.srv.Addr(), e.srv.HTTPURL(), e.srv.EventsURL(), ms(time.Since(t0))))
	e.p.blank()
	return nil
}

func (e *env) dial(ctx context.Context, user string, noCAE bool) (*app.Client, error) {
	return e.dialTo(ctx, e.srv.Addr(), user, noCAE)
}

func (e *env) dialTo(ctx context.Context, addr, user string, noCAE bool) (*app.Client, error) {
	c, err := app.Dial(ctx, app.Config{
		Server: addr, IdP: e.idp.Issuer(), User: user, Password: idp.Password, NoCAE: noCAE,
		Logger: e.log.With("app", "client", "user", user),
	})
	if err != nil {
		return nil, fmt.Errorf("demo: client for %s: %w", user, err)
	}
	return c, nil
}

func (e *env) teardown() {
	if e.alice != nil {
		_ = e.alice.Close()
	}
	if e.srv != nil {
		_ = e.srv.Close()
	}
	if e.idp != nil {
		_ = e.idp.Close()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ms(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	case d < 10*time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return d.Round(100 * time.Millisecond).String()
}

func short(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
