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

// Token calls GetToken with the request's scopes, EnableCAE and the
// challenge's claims.
func (s *Source) Token(ctx context.Context, req client.TokenRequest) (*client.Token, error) {
	if len(req.Scopes) == 0 {
		return nil, errors.New("azsource: no scopes: configure client.WithScopes, e.g. \"api://inbox/.default\"")
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
