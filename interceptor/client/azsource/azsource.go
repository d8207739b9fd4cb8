// Package azsource adapts an Azure SDK credential (azcore.TokenCredential,
// e.g. any azidentity credential) to client.TokenSource.
//
// Every request sets policy.TokenRequestOptions.EnableCAE, so azidentity
// declares the cp1 capability itself (the client's own capability claims are
// not passed on, to avoid declaring it twice), and passes the claims of a
// challenge in Claims, which makes azidentity bypass its token cache.
package azsource

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/caekit/caekit/interceptor/client"
)

// Source wraps a TokenCredential. It is safe for concurrent use when the
// credential is (azidentity credentials are).
type Source struct {
	cred     azcore.TokenCredential
	tenantID string
}

var _ client.TokenSource = (*Source)(nil)

// Option configures a Source.
type Option func(*Source)

// WithTenantID requests tokens from this tenant instead of the
// credential's default.
func WithTenantID(id string) Option { return func(s *Source) { s.tenantID = id } }

// New wraps cred. Every invalid argument (a nil cred, a nil option) is
// reported at once, joined with errors.Join.
func New(cred azcore.TokenCredential, opts ...Option) (*Source, error) {
	var errs []error
	if cred == nil {
		errs = append(errs, errors.New("azsource: nil TokenCredential"))
	}
	s := &Source{cred: cred}
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("azsource: option %d is nil", i))
			continue
		}
		o(s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrStepUpUnsupported is returned for a token request carrying RFC 9470
// acr_values or max_age: azcore's policy.TokenRequestOptions has fields for
// scopes, claims, CAE and tenant, and none for acr_values or max_age, so
// a TokenCredential cannot be asked for them. The client then returns the
// step-up challenge to the application (Entra itself uses the claims
// dialect, which this source answers, for its authentication contexts).
var ErrStepUpUnsupported = errors.New("azsource: azcore's TokenRequestOptions cannot carry acr_values or max_age, so an RFC 9470 step-up challenge cannot be answered")

// Token calls GetToken with the request's scopes, EnableCAE and the
// challenge's claims. A request with RFC 9470 acr_values or max_age fails
// with ErrStepUpUnsupported.
func (s *Source) Token(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
	if len(req.Scopes) == 0 {
		return nil, errors.New("azsource: no scopes: configure client.WithScopes, e.g. \"api://inbox/.default\"")
	}
	if req.StepUp() {
		return nil, ErrStepUpUnsupported
	}
	at, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{
		Scopes:    slices.Clone(req.Scopes),
		Claims:    req.ChallengeClaims,
		EnableCAE: true,
		TenantID:  s.tenantID,
	})
	if err != nil {
		return nil, fmt.Errorf("azsource: %w", err)
	}
	return &client.Token{AccessToken: at.Token, ExpiresAt: at.ExpiresOn, RefreshAt: at.RefreshOn}, nil
}
