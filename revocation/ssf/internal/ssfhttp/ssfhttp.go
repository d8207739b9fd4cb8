// Package ssfhttp is the HTTP plumbing that the SSF receiver and the
// stream-management client share: JSON requests with bounded answers,
// redirect guards, and discovery of a transmitter's ssf-configuration.
package ssfhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/revocation/ssf"
)

// MaxDocument bounds a fetched ssf-configuration or stream-management answer.
const MaxDocument = 1 << 20

// WellKnownURL returns the ssf-configuration URL of an issuer: the issuer's
// path, if any, is appended after /.well-known/ssf-configuration.
func WellKnownURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("ssf: issuer %q is not an http(s) URL", issuer)
	}
	path := strings.TrimSuffix(u.Path, "/")
	u.Path = "/.well-known/ssf-configuration" + path
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	return u.String(), nil
}

// FetchConfiguration reads an issuer's ssf-configuration and checks that its
// issuer member is the issuer asked for. The issuer, every redirect and
// every endpoint URL in the document must be https (plain http only on a
// loopback address, or on any host when insecure is set); a document that
// names a plain-http endpoint elsewhere is refused.
func FetchConfiguration(ctx context.Context, hc *http.Client, issuer string, insecure bool) (*ssf.TransmitterConfiguration, error) {
	if err := jose.CheckURL(issuer, insecure, InsecureOption); err != nil {
		return nil, fmt.Errorf("ssf: issuer: %w", err)
	}
	u, err := WellKnownURL(issuer)
	if err != nil {
		return nil, err
	}
	var tc ssf.TransmitterConfiguration
	if err := DoJSON(ctx, Guard(hc, insecure, false), http.MethodGet, u, "", nil, &tc, MaxDocument); err != nil {
		return nil, fmt.Errorf("ssf: transmitter configuration: %w", err)
	}
	if tc.Issuer != issuer {
		return nil, fmt.Errorf("ssf: transmitter configuration at %s names issuer %q, expected %q", u, tc.Issuer, issuer)
	}
	if err := checkURLs(&tc, insecure); err != nil {
		return nil, fmt.Errorf("ssf: transmitter configuration at %s: %w", u, err)
	}
	return &tc, nil
}

// checkURLs applies the URL rule to every endpoint tc names.
func checkURLs(tc *ssf.TransmitterConfiguration, insecure bool) error {
	for _, e := range []struct{ name, url string }{
		{"jwks_uri", tc.JWKSURI}, {"configuration_endpoint", tc.ConfigurationEndpoint}, {"status_endpoint", tc.StatusEndpoint},
		{"add_subject_endpoint", tc.AddSubjectEndpoint}, {"remove_subject_endpoint", tc.RemoveSubjectEndpoint},
		{"verification_endpoint", tc.VerificationEndpoint},
	} {
		if e.url == "" {
			continue
		}
		if err := jose.CheckURL(e.url, insecure, InsecureOption); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return nil
}

// Guard returns a copy of hc whose redirects must satisfy the URL
// rule (jose.CheckURL: https, plain http only on loopback or when insecure)
// and, when sameOrigin is set (a credential rides on the requests), stay on
// the origin of the first request; then hc's own CheckRedirect applies.
func Guard(hc *http.Client, insecure, sameOrigin bool) *http.Client {
	return jose.GuardRedirects(hc, insecure, InsecureOption, sameOrigin)
}

// InsecureOption names the opt-in to plain http in error messages.
const InsecureOption = "WithInsecureHTTP"

// DoJSON sends in (if not nil) as JSON and decodes the answer into out (if
// not nil), reading at most max bytes. A non-2xx answer is an *ssf.HTTPError,
// an answer over max bytes wraps ssf.ErrTooLarge.
func DoJSON(ctx context.Context, hc *http.Client, method, u, auth string, in, out any, max int64) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("ssf: %s %s: encode: %w", method, u, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("ssf: %s %s: %w", method, u, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ssf: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("ssf: %s %s: read: %w", method, u, err)
	}
	if int64(len(data)) > max {
		return fmt.Errorf("ssf: %s %s: %w (more than %d bytes)", method, u, ssf.ErrTooLarge, max)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := string(data)
		if len(snippet) > 512 {
			snippet = snippet[:512]
		}
		return &ssf.HTTPError{Method: method, URL: u, StatusCode: resp.StatusCode, Body: strings.TrimSpace(snippet)}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ssf: %s %s: response is not the expected JSON: %w", method, u, err)
	}
	return nil
}
