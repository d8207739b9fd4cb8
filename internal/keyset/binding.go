package keyset

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caekit/caekit/internal/jose"
)

// DiscoveryTenantPlaceholder is the placeholder a multi-tenant OpenID
// Provider (Entra's common, organizations and consumers endpoints) puts in
// the issuer of its discovery document: keys from that document verify
// tokens whose iss is the template with the placeholder replaced by the
// token's tid claim.
const DiscoveryTenantPlaceholder = "{tenantid}"

// issuerBinding is the set of issuers a key may sign for: exact iss values
// and tenant templates, in which the token's tid claim fills the
// placeholder. Every Key has one, immutable; a nil binding accepts
// nothing (fail closed).
type issuerBinding struct {
	source    string // the key source, for errors: e.g. WithDiscovery("https://idp")
	exact     []string
	templates []issuerTemplate
}

// issuerTemplate matches iss == prefix + tid + suffix.
type issuerTemplate struct {
	prefix, suffix string
	text           string // the template as configured or published
}

// match reports whether iss is the template with tid substituted. tid must
// be a single, non-empty path segment without braces.
func (t *issuerTemplate) match(iss, tid string) bool {
	return tid != "" && !strings.ContainsAny(tid, "/?#{}") &&
		len(iss) == len(t.prefix)+len(tid)+len(t.suffix) &&
		strings.HasPrefix(iss, t.prefix) && strings.HasSuffix(iss, t.suffix) &&
		iss[len(t.prefix):len(iss)-len(t.suffix)] == tid
}

// accepts reports whether a key with this binding may sign a token with
// these iss and tid claims.
func (b *issuerBinding) accepts(iss, tid string) bool {
	if b == nil || iss == "" {
		return false
	}
	if slices.Contains(b.exact, iss) {
		return true
	}
	for i := range b.templates {
		if b.templates[i].match(iss, tid) {
			return true
		}
	}
	return false
}

// equal reports whether a and b accept the same issuers from the same source.
func (b *issuerBinding) equal(o *issuerBinding) bool {
	if b == nil || o == nil {
		return b == o
	}
	return b.source == o.source && slices.Equal(b.exact, o.exact) &&
		slices.EqualFunc(b.templates, o.templates, func(x, y issuerTemplate) bool { return x.text == y.text })
}

// issuers lists the accepted issuers, for errors.
func (b *issuerBinding) issuers() string {
	if b == nil {
		return "no issuer"
	}
	all := append([]string(nil), b.exact...)
	for _, t := range b.templates {
		all = append(all, t.text)
	}
	return strings.Join(all, ", ")
}

// check refuses a token whose iss the verifying key may not sign for.
func (b *issuerBinding) check(iss, tid, kid string) error {
	if b.accepts(iss, tid) {
		return nil
	}
	src := "an unbound key source"
	if b != nil {
		src = b.source
	}
	return fmt.Errorf("%w: %w: iss %q (tid %q) is not an issuer of key %q from %s, which signs only for %s",
		ErrIssuer, ErrKeyIssuer, jose.Clip(iss), jose.Clip(tid), jose.Clip(kid), src, b.issuers())
}

// bindingFor binds a key source to issuers: exact values, and templates
// holding placeholder once.
func bindingFor(source string, issuers []string, placeholder string) *issuerBinding {
	b := &issuerBinding{source: source}
	for _, iss := range issuers {
		if prefix, suffix, ok := strings.Cut(iss, placeholder); ok {
			t := issuerTemplate{prefix: prefix, suffix: suffix, text: iss}
			if !slices.ContainsFunc(b.templates, func(x issuerTemplate) bool { return x.text == iss }) {
				b.templates = append(b.templates, t)
			}
			continue
		}
		if !slices.Contains(b.exact, iss) {
			b.exact = append(b.exact, iss)
		}
	}
	return b
}

// discoveryBinding binds the keys of WithDiscovery(discoveryURL) to the
// issuers that URL may speak for, given the issuer its discovery document
// publishes:
//
//   - the discovery URL itself, always;
//   - the document's issuer when it equals the discovery URL up to a
//     trailing slash;
//   - the document's issuer when it is a template holding
//     DiscoveryTenantPlaceholder once and the discovery URL is an instance of
//     it (Entra's https://login.microsoftonline.com/organizations/v2.0
//     publishes https://login.microsoftonline.com/{tenantid}/v2.0): tokens
//     match it with their tid substituted.
//
// Any other document issuer is not trusted, since whoever serves a
// discovery document could otherwise claim another provider's issuer; the
// returned note then explains why, for the log.
func discoveryBinding(discoveryURL, docIssuer string) (*issuerBinding, string) {
	b := &issuerBinding{source: fmt.Sprintf("WithDiscovery(%q)", discoveryURL), exact: []string{discoveryURL}}
	trim := func(s string) string { return strings.TrimSuffix(s, "/") }
	switch {
	case docIssuer == "" || docIssuer == discoveryURL:
		return b, ""
	case trim(docIssuer) == trim(discoveryURL):
		b.exact = append(b.exact, docIssuer)
		return b, ""
	case strings.Count(docIssuer, DiscoveryTenantPlaceholder) == 1:
		prefix, suffix, _ := strings.Cut(trim(docIssuer), DiscoveryTenantPlaceholder)
		u := trim(discoveryURL)
		if len(u) > len(prefix)+len(suffix) && strings.HasPrefix(u, prefix) && strings.HasSuffix(u, suffix) &&
			!strings.ContainsAny(u[len(prefix):len(u)-len(suffix)], "/?#") {
			p, s, _ := strings.Cut(docIssuer, DiscoveryTenantPlaceholder)
			b.templates = append(b.templates, issuerTemplate{prefix: p, suffix: s, text: docIssuer})
			return b, ""
		}
	}
	return b, fmt.Sprintf("the discovery document names issuer %q, which is neither the discovery URL nor a %s template of which it is an instance; its keys verify only tokens with iss %q (bind other issuers explicitly with WithDiscovery(url, ForIssuers(...)))",
		jose.Clip(docIssuer), DiscoveryTenantPlaceholder, discoveryURL)
}
