// Package oauth2source adapts a golang.org/x/oauth2.TokenSource to
// client.TokenSource.
//
// An oauth2.TokenSource cannot send a claims request, so:
//   - the client capabilities (cp1) in ordinary requests are dropped: the
//     identity provider does not learn that the client is CAE-capable and
//     servers typically answer revocations with plain rejections, which are
//     returned to the application;
//   - a request that answers a claims challenge (BypassCache with claims)
//     fails with ErrClaimsUnsupported, so the client returns the challenge to
//     the application instead of retrying with a token that cannot satisfy it.
//
// Use client/httpsource or client/azsource where claims challenges matter.
package oauth2source

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/caekit/caekit/interceptor/client"
)

// ErrClaimsUnsupported is returned for a token request that carries the
// claims of a challenge.
var ErrClaimsUnsupported = errors.New("oauth2source: an oauth2.TokenSource cannot request claims, so a claims challenge cannot be answered")

// ErrStepUpUnsupported is returned for a token request that answers an RFC
// 9470 step-up challenge (acr_values, max_age): an oauth2.TokenSource
// cannot pass them either, so the client returns the challenge to the
// application, which can run a new authorization request itself (for
// example with oauth2.Config.AuthCodeURL and oauth2.SetAuthURLParam
// ("acr_values", …)).
var ErrStepUpUnsupported = errors.New("oauth2source: an oauth2.TokenSource cannot pass acr_values or max_age, so an RFC 9470 step-up challenge cannot be answered")

// Source wraps an oauth2.TokenSource. It is safe for concurrent use when the
// wrapped source is (oauth2.ReuseTokenSource and the sources of
// clientcredentials.Config and oauth2.Config are).
type Source struct {
	ts oauth2.TokenSource
}

var _ client.TokenSource = (*Source)(nil)

// New wraps ts. Wrap it in oauth2.ReuseTokenSource or not: the caekit client
// caches and refreshes either way. A Source of a nil ts fails every Token
// call with ErrNilTokenSource.
func New(ts oauth2.TokenSource) *Source { return &Source{ts: ts} }

// ErrNilTokenSource is returned by Token for a Source made with a nil
// oauth2.TokenSource.
var ErrNilTokenSource = errors.New("oauth2source: nil oauth2.TokenSource")

// Token returns ts's token. The scopes are those ts was configured with;
// req.Scopes is not consulted. ctx is not passed on: oauth2.TokenSource has
// no context (configure one when creating ts).
func (s *Source) Token(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
	if req.BypassCache && req.ChallengeClaims != "" {
		return nil, ErrClaimsUnsupported
	}
	if req.StepUp() {
		return nil, ErrStepUpUnsupported
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.ts == nil {
		return nil, ErrNilTokenSource
	}
	t, err := s.ts.Token()
	if err != nil {
		return nil, fmt.Errorf("oauth2source: %w", err)
	}
	if t == nil {
		return nil, errors.New("oauth2source: oauth2.TokenSource returned no token and no error")
	}
	if typ := t.Type(); !strings.EqualFold(typ, "Bearer") {
		return nil, fmt.Errorf("oauth2source: token type %q is not Bearer", typ)
	}
	if t.Expiry.IsZero() {
		return nil, errors.New("oauth2source: token has no expiry; caekit needs one to refresh in time")
	}
	return &client.Token{AccessToken: t.AccessToken, ExpiresAt: t.Expiry}, nil
}
