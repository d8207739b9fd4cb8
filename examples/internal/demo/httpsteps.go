package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azpolicy "github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/caekit/caekit/examples/internal/idp"
	"github.com/caekit/caekit/examples/internal/server"
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/revocation"
)

// maxNotBeforeWait bounds how long the demo's credential waits for the nbf
// a challenge asks for (it is at most the next second).
const maxNotBeforeWait = 2 * time.Second

// idpCredential is an azcore.TokenCredential backed by the development IdP
// (password grant for one user). Like azidentity with
// TokenRequestOptions.EnableCAE, it declares the cp1 capability and merges
// it with the claims of a challenge (MSAL's claims-request merge); see
// https://learn.microsoft.com/entra/identity-platform/app-resilience-continuous-access-evaluation
// ("claims challenge"). Unlike MSAL it waits for the nbf the claims ask for,
// as caekit's own client does (step 10), because this IdP ignores it and
// the SDK's single retry does not wait.
type idpCredential struct {
	tokenURL, user string
	hc             *http.Client

	mu     sync.Mutex
	claims []string // the Claims of every GetToken, in order
}

// GetToken gets a token from the IdP for o.Scopes, with o.Claims merged with cp1.
func (c *idpCredential) GetToken(ctx context.Context, o azpolicy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.claims = append(c.claims, o.Claims)
	c.mu.Unlock()
	claims, err := challenge.MergeClaims(o.Claims, "cp1")
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("credential: claims: %w", err)
	}
	if o.Claims != "" {
		if nbf, err := challenge.RequestedNotBefore(o.Claims); err == nil && !nbf.IsZero() {
			if d := time.Until(nbf); d > 0 {
				if d > maxNotBeforeWait {
					return azcore.AccessToken{}, fmt.Errorf("credential: the challenge asks for nbf %d, %s away (more than %s)", nbf.Unix(), d, maxNotBeforeWait)
				}
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return azcore.AccessToken{}, ctx.Err()
				}
			}
		}
	}
	form := url.Values{"grant_type": {"password"}, "username": {c.user}, "password": {idp.Password},
		"claims": {claims}, "scope": {strings.Join(o.Scopes, " ")}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("credential: token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var tr idp.TokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("credential: token endpoint: HTTP %d (%v)", resp.StatusCode, err)
	}
	return azcore.AccessToken{Token: tr.AccessToken, ExpiresOn: time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)}, nil
}

// attempts is an azcore policy after the bearer token policy: it records
// the status of every attempt the bearer policy sends.
type attempts struct {
	mu       sync.Mutex
	statuses []int
}

// Do sends the request and records the response's status.
func (a *attempts) Do(req *azpolicy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err == nil {
		a.mu.Lock()
		a.statuses = append(a.statuses, resp.StatusCode)
		a.mu.Unlock()
	}
	return resp, err
}

func (a *attempts) take() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.statuses
	a.statuses = nil
	return s
}

// step12: the Azure SDK for Go, unchanged, against the REST route.
func (e *env) step12(ctx context.Context, st *Step) error {
	const user = "carol"
	cred := &idpCredential{tokenURL: e.idp.TokenURL(), user: user, hc: &http.Client{Timeout: 10 * time.Second}}
	bearer := runtime.NewBearerTokenPolicy(cred, []string{e.idp.Audience() + "/.default"},
		&azpolicy.BearerTokenOptions{InsecureAllowCredentialWithHTTP: true}) // loopback only
	seen := &attempts{}
	pl := runtime.NewPipeline("caekit-demo", "v0.0.0",
		runtime.PipelineOptions{PerRetry: []azpolicy.Policy{bearer, seen}},
		&azpolicy.ClientOptions{Retry: azpolicy.RetryOptions{MaxRetries: -1}})
	url := e.srv.HTTPURL() + "/v1/messages/12"
	get := func() (server.Message, int, error) {
		req, err := runtime.NewRequest(ctx, http.MethodGet, url)
		if err != nil {
			return server.Message{}, 0, err
		}
		resp, err := pl.Do(req)
		if err != nil {
			return server.Message{}, 0, fmt.Errorf("azcore pipeline: %w", err)
		}
		defer resp.Body.Close()
		var m server.Message
		if resp.StatusCode == http.StatusOK {
			err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&m)
		}
		return m, resp.StatusCode, err
	}
	if _, code, err := get(); err != nil || code != http.StatusOK {
		return fmt.Errorf("first GET %s: HTTP %d %v", url, code, err)
	}
	seen.take()
	st.Lines = append(st.Lines, fmt.Sprintf("azcore pipeline (runtime.NewBearerTokenPolicy, unchanged) GET %s → 200", url))
	res, err := e.admin(ctx, "users/"+user+"/"+idp.ActionRevokeSessions)
	st.Obs.Admin = res
	if err != nil {
		return err
	}
	st.Lines = append(st.Lines, pushLine(res))
	t0 := time.Now()
	m, code, err := get()
	took := time.Since(t0)
	st.Obs.HTTPStatuses = seen.take()
	st.Obs.Subject = m.Subject
	cred.mu.Lock()
	st.Obs.CredentialClaims = append([]string(nil), cred.claims...)
	cred.mu.Unlock()
	if err != nil {
		st.Obs.Err = err
		return err
	}
	retries := max(0, len(st.Obs.HTTPStatuses)-1)
	if n := len(st.Obs.CredentialClaims); n > 0 {
		st.Lines = append(st.Lines, fmt.Sprintf("the SDK's GetToken for the retry carried the challenge's claims %s (the credential waits for their nbf, as caekit's client does)", st.Obs.CredentialClaims[n-1]))
	}
	st.Lines = append(st.Lines, fmt.Sprintf("GET → attempts %v: the SDK answered the 401 claims challenge (GetToken with its claims) and retried %d time(s); HTTP %d as %s in %s",
		st.Obs.HTTPStatuses, retries, code, m.Subject, ms(took)))
	if code != http.StatusOK || len(st.Obs.HTTPStatuses) != 2 || st.Obs.HTTPStatuses[0] != http.StatusUnauthorized {
		return fmt.Errorf("GET after the revocation: attempts %v, HTTP %d; want [401 200]: one challenge, one retry", st.Obs.HTTPStatuses, code)
	}
	return nil
}

// step13: a Server-Sent Events stream, read by a plain net/http client, is
// cut by an event; the time is measured from the event being stored (the
// store's subscription fires) to the client seeing the stream end.
func (e *env) step13(ctx context.Context, st *Step) error {
	const user, interval = "bob", 50
	tok, err := e.userToken(ctx, user)
	if err != nil {
		return err
	}
	stored := make(chan time.Time, 1)
	unsubscribe := e.srv.Store().Subscribe(func(ev revocation.Event) {
		if ev.Type == revocation.TypeSessionRevoked {
			select {
			case stored <- time.Now():
			default:
			}
		}
	})
	defer unsubscribe()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	url := fmt.Sprintf("%s%s?interval_ms=%d", e.srv.HTTPURL(), server.WatchPath, interval)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		return fmt.Errorf("GET %s: HTTP %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	type end struct {
		at  time.Time
		err error
	}
	events := make(chan struct{}, 64)
	done := make(chan end, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				select {
				case events <- struct{}{}:
				default:
				}
			}
		}
		done <- end{time.Now(), sc.Err()}
	}()
	for range 3 {
		select {
		case <-events:
			st.Obs.ReceivedBefore++
		case ended := <-done:
			return fmt.Errorf("the event stream ended before the event: %v", ended.err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res, err := e.admin(ctx, "users/"+user+"/"+idp.ActionRevokeSessions)
	st.Obs.Admin = res
	if err != nil {
		return err
	}
	ended, err := awaitCut(done, cancel, "the event stream")
	if err != nil {
		return err
	}
	var storedAt time.Time
	select {
	case storedAt = <-stored:
	default:
		return errors.New("the store never reported the event")
	}
	st.Obs.CutAfter = ended.at.Sub(storedAt)
	st.Obs.Err = ended.err
	st.Lines = append(st.Lines,
		fmt.Sprintf("GET %s (text/event-stream, plain net/http client): %d events, one every %dms", server.WatchPath, st.Obs.ReceivedBefore, interval),
		pushLine(res),
		fmt.Sprintf("event stream cut %s after the event was stored (the response ended; the client read %v)", ms(st.Obs.CutAfter), errOrEOF(ended.err)))

	// The next request with that token gets the challenge, as on gRPC.
	r2, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	r2.Header.Set("Authorization", "Bearer "+tok)
	resp2, err := (&http.Client{Transport: tr}).Do(r2)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp2.Body, 64<<10))
	_ = resp2.Body.Close()
	st.Obs.Challenge = resp2.Header.Get("WWW-Authenticate")
	ch, perr := challenge.Parse(st.Obs.Challenge)
	st.Lines = append(st.Lines, fmt.Sprintf("re-opening with the same token: HTTP %d, WWW-Authenticate %s", resp2.StatusCode, short(st.Obs.Challenge, 90)))
	if resp2.StatusCode != http.StatusUnauthorized || perr != nil || !ch.InsufficientClaims() {
		return fmt.Errorf("re-open: HTTP %d, challenge %q (%v); want 401 with a claims challenge", resp2.StatusCode, st.Obs.Challenge, perr)
	}
	return nil
}

func errOrEOF(err error) string {
	if err == nil {
		return "EOF"
	}
	return err.Error()
}

// userToken gets a CAE (cp1) access token for user by the password grant.
func (e *env) userToken(ctx context.Context, user string) (string, error) {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {idp.Password},
		"claims": {`{"access_token":{"xms_cc":{"values":["cp1"]}}}`}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.idp.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", user, err)
	}
	defer resp.Body.Close()
	var tr idp.TokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token for %s: HTTP %d (%v)", user, resp.StatusCode, err)
	}
	return tr.AccessToken, nil
}
