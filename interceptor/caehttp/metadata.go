package caehttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/caekit/caekit/interceptor"
)

// WellKnownPath is the well-known path suffix of protected resource
// metadata (RFC 9728 §3): the metadata of the resource
// https://api.example/v1 is at
// https://api.example/.well-known/oauth-protected-resource/v1 (§3.1).
const WellKnownPath = "/.well-known/oauth-protected-resource"

// ResourceMetadata is the RFC 9728 §2 protected resource metadata
// document ProtectedResourceMetadata serves.
type ResourceMetadata struct {
	// Resource is the protected resource's identifier (REQUIRED, §2): an
	// https URL without fragment.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuer identifiers of the authorization
	// servers that issue tokens for the resource (§2).
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported are the scope values the resource uses (§2).
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported is ["header"]: the middleware reads the token
	// from the Authorization header only (RFC 6750 §2.1; §2 of RFC 9728).
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// ResourceSigningAlgValuesSupported are the JWS algorithms the resource
	// signs its responses with (§2); omitted unless set, as caekit signs no
	// responses.
	ResourceSigningAlgValuesSupported []string `json:"resource_signing_alg_values_supported,omitempty"`
}

// MetadataOption configures ProtectedResourceMetadata.
type MetadataOption func(*ResourceMetadata)

// WithResource sets the resource identifier. Default: derived from the
// Server's WithResourceMetadata URL by removing WellKnownPath (RFC 9728
// §3.1).
func WithResource(id string) MetadataOption {
	return func(m *ResourceMetadata) { m.Resource = id }
}

// WithAuthorizationServers sets authorization_servers. Default: the
// validator's issuers (token.Validator.Issuers), when it reports them.
func WithAuthorizationServers(issuers ...string) MetadataOption {
	return func(m *ResourceMetadata) { m.AuthorizationServers = slices.Clone(issuers) }
}

// WithScopes sets scopes_supported. Default: none (omitted).
func WithScopes(scopes ...string) MetadataOption {
	return func(m *ResourceMetadata) { m.ScopesSupported = slices.Clone(scopes) }
}

// WithSigningAlgorithms sets resource_signing_alg_values_supported, the
// algorithms the resource signs its responses with (RFC 9728 §2; "none" is
// refused). Default: omitted. The algorithms the validator accepts for
// access tokens are not this: they are the authorization server's
// business, published in its own metadata.
func WithSigningAlgorithms(algs ...string) MetadataOption {
	return func(m *ResourceMetadata) { m.ResourceSigningAlgValuesSupported = slices.Clone(algs) }
}

// issuerLister is implemented by *token.Validator.
type issuerLister interface{ Issuers() []string }

// ProtectedResourceMetadata returns the document and an http.Handler
// serving it as application/json (RFC 9728 §3.2) on GET and HEAD. Mount it
// at the metadata URL given to interceptor.WithResourceMetadata, outside
// the middleware (or exempt from it): clients fetch it without a token.
//
// It returns an error naming what is wrong: no resource identifier, one
// that is not an https URL without fragment (http only for a loopback
// host), a WithResourceMetadata URL that is not the one RFC 9728 §3.1
// derives from the resource (a client would reject the document, §3.3),
// an authorization server that is not an absolute URL, or the "none"
// algorithm.
func ProtectedResourceMetadata(srv *interceptor.Server, opts ...MetadataOption) (*ResourceMetadata, http.Handler, error) {
	if srv == nil {
		return nil, nil, errors.New("caehttp: ProtectedResourceMetadata: server is nil")
	}
	m := &ResourceMetadata{BearerMethodsSupported: []string{"header"}}
	if il, ok := srv.Validator().(issuerLister); ok {
		m.AuthorizationServers = il.Issuers()
	}
	metaURL := srv.ResourceMetadataURL()
	if metaURL != "" {
		if u, err := url.Parse(metaURL); err == nil && strings.HasPrefix(u.Path, WellKnownPath) {
			u.Path = strings.TrimPrefix(u.Path, WellKnownPath)
			u.RawPath = ""
			m.Resource = u.String()
		}
	}
	for i, o := range opts {
		if o == nil {
			return nil, nil, fmt.Errorf("caehttp: ProtectedResourceMetadata: option %d is nil", i)
		}
		o(m)
	}
	var errs []error
	if m.Resource == "" {
		errs = append(errs, errors.New("caehttp: ProtectedResourceMetadata: no resource identifier: use WithResource or interceptor.WithResourceMetadata"))
	} else if msg := checkResourceURL(m.Resource); msg != "" {
		errs = append(errs, fmt.Errorf("caehttp: ProtectedResourceMetadata: resource %q %s", m.Resource, msg))
	} else if metaURL != "" && MetadataURL(m.Resource) != metaURL {
		errs = append(errs, fmt.Errorf("caehttp: ProtectedResourceMetadata: the server's resource_metadata URL %q is not %q, the metadata URL of resource %q (RFC 9728 §3.1)", metaURL, MetadataURL(m.Resource), m.Resource))
	}
	for _, as := range m.AuthorizationServers {
		if u, err := url.Parse(as); err != nil || !u.IsAbs() || u.Host == "" {
			errs = append(errs, fmt.Errorf("caehttp: ProtectedResourceMetadata: authorization server %q is not an absolute URL", as))
		}
	}
	for _, alg := range m.ResourceSigningAlgValuesSupported {
		if strings.EqualFold(alg, "none") || alg == "" {
			errs = append(errs, fmt.Errorf("caehttp: ProtectedResourceMetadata: signing algorithm %q is not allowed (RFC 9728 §2)", alg))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("caehttp: ProtectedResourceMetadata: %w", err)
	}
	return m, metadataHandler(body), nil
}

// MetadataURL returns the metadata URL of resource (RFC 9728 §3.1):
// WellKnownPath inserted between the host and the path, a trailing slash
// of the path dropped. It returns "" for an unparsable resource.
func MetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	u.Path, u.RawPath = "", ""
	u.RawQuery, u.Fragment = "", ""
	return u.String() + WellKnownPath + p
}

func checkResourceURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "must be an absolute URL"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a fragment (RFC 9728 §2)"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	}
	return "must use https (RFC 9728 §2; http only for a loopback host)"
}

func isLoopback(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}

func metadataHandler(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", length)
		h.Set("Cache-Control", "max-age=300")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
