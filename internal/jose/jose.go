// Package jose holds the strict JOSE primitives that caekit's access-token
// validator (interceptor/token), its Security Event Token receiver
// (revocation/ssf) and its logout receivers (revocation/logout) share, so
// that all three read a token the same way:
//
//   - SplitJWS, CheckAlg, PayloadJSON/Payload, VerifyJWS (and ParseJWS, all
//     of them at once): the one compact-JWS split;
//   - CheckJSON: UTF-8, no duplicate member names, bounded nesting;
//   - B64: canonical, unpadded base64url;
//   - ClaimString, ClaimStrings, ClaimTime: the one claim rule (absent is
//     absent, null is the wrong type, NumericDate in [0, 2^33]);
//   - Methods and KeyFits: a private alg table and the rule that a key's type
//     (and curve, and size) matches the algorithm;
//   - Hash: the short token hash logged in place of a token;
//   - CheckURL and GuardRedirects: https only, plain http only on loopback
//     or when the caller opted in, redirects held to the same rule.
package jose

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// B64 decodes base64url without padding, refusing non-canonical encodings
// (trailing bits that are not zero), so that one token has one encoding.
var B64 = base64.RawURLEncoding.Strict()

// Methods maps every supported alg to its verifier. It is private to caekit
// on purpose: jwt.GetSigningMethod consults a global registry that other code
// can extend (it even knows "none").
var Methods = map[string]jwt.SigningMethod{
	"RS256": jwt.SigningMethodRS256,
	"RS384": jwt.SigningMethodRS384,
	"RS512": jwt.SigningMethodRS512,
	"PS256": jwt.SigningMethodPS256,
	"PS384": jwt.SigningMethodPS384,
	"PS512": jwt.SigningMethodPS512,
	"ES256": jwt.SigningMethodES256,
	"ES384": jwt.SigningMethodES384,
	"ES512": jwt.SigningMethodES512,
	"EdDSA": jwt.SigningMethodEdDSA,
	"HS256": jwt.SigningMethodHS256,
	"HS384": jwt.SigningMethodHS384,
	"HS512": jwt.SigningMethodHS512,
}

// ErrKeyType is wrapped by KeyFits when a key does not fit an algorithm.
var ErrKeyType = errors.New("key does not fit the algorithm")

// KeyFits reports whether the public key may verify alg: the key type must
// match the algorithm family (and, for ECDSA, the curve), and an RSA key must
// have at least minRSABits bits. HMAC algorithms and secrets never fit: they
// live in their own tables.
func KeyFits(alg string, key any, minRSABits int) error {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return fmt.Errorf("%w: alg %s needs an RSA key, kid names a %s key", ErrKeyType, alg, KeyKind(key))
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: RSA key has %d bits, need at least %d", ErrKeyType, k.N.BitLen(), minRSABits)
		}
		return nil
	case "ES256", "ES384", "ES512":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve == nil {
			return fmt.Errorf("%w: alg %s needs an EC key, kid names a %s key", ErrKeyType, alg, KeyKind(key))
		}
		want := elliptic.P256()
		switch alg {
		case "ES384":
			want = elliptic.P384()
		case "ES512":
			want = elliptic.P521()
		}
		if k.Curve != want {
			return fmt.Errorf("%w: alg %s needs curve %s, key is on %s", ErrKeyType, alg, want.Params().Name, k.Curve.Params().Name)
		}
		return nil
	case "EdDSA":
		if k, ok := key.(ed25519.PublicKey); !ok || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: alg EdDSA needs an Ed25519 key, kid names a %s key", ErrKeyType, KeyKind(key))
		}
		return nil
	}
	return fmt.Errorf("%w: alg %q", ErrKeyType, Clip(alg))
}

// KeyKind names a key's type for an error message.
func KeyKind(key any) string {
	switch key.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	case ed25519.PublicKey:
		return "Ed25519"
	case []byte:
		return "symmetric"
	default:
		return fmt.Sprintf("%T", key)
	}
}

// maxEcho bounds how much of a sender-chosen value is repeated in an error.
const maxEcho = 64

// Clip shortens a sender-chosen value before it goes into an error or a log
// line, cutting on a rune boundary.
func Clip(v string) string {
	if len(v) <= maxEcho {
		return v
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "..."
}

// CheckURL requires an absolute http(s) URL: https, or plain http only when
// the host is a loopback address or insecure is set. insecureOption names the
// caller's opt-in (e.g. "WithInsecureHTTP") for the error message.
func CheckURL(raw string, insecure bool, insecureOption string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", Clip(raw), err)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q is not absolute", Clip(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if insecure || IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("URL %q is plain http on a non-loopback host; use https (or %s in closed test networks)", Clip(raw), insecureOption)
	default:
		return fmt.Errorf("URL %q: scheme must be https", Clip(raw))
	}
}

// IsLoopback reports whether host (without port) is "localhost" or a
// loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SameOrigin reports whether a and b are absolute URLs with the same scheme,
// host and port (RFC 6454 origin), the default port made explicit.
func SameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || ua.Host == "" || ub.Host == "" {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Hostname(), ub.Hostname()) && port(ua) == port(ub)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// MaxRedirects bounds the redirects a client from GuardRedirects follows.
const MaxRedirects = 10

// GuardRedirects returns a copy of hc whose redirects must satisfy the URL
// rule (CheckURL with insecure and insecureOption: https, plain http only on
// loopback or by opt-in) and, when sameOrigin is set (a credential rides on
// the requests), stay on the origin of the first request; at most
// MaxRedirects are followed; then hc's own CheckRedirect applies. hc itself
// is not modified.
func GuardRedirects(hc *http.Client, insecure bool, insecureOption string, sameOrigin bool) *http.Client {
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= MaxRedirects {
			return fmt.Errorf("stopped after %d redirects", MaxRedirects)
		}
		if err := CheckURL(req.URL.String(), insecure, insecureOption); err != nil {
			return fmt.Errorf("redirect refused: %w", err)
		}
		if sameOrigin && !SameOrigin(via[0].URL.String(), req.URL.String()) {
			return fmt.Errorf("redirect from %s to %s refused: it leaves the origin the credential is meant for", via[0].URL.Redacted(), req.URL.Redacted())
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &c
}
