package token

import (
	"slices"
	"strings"
	"time"

	"github.com/caekit/caekit/revocation"
)

// Claims are the validated claims of an access token. A *Claims is immutable
// once returned by a Validator: it may be shared between calls (the verified
// token cache hands out the same pointer), so never modify one.
type Claims struct {
	Issuer    string
	Subject   string   // sub
	Audience  []string // aud
	ObjectID  string   // oid
	TenantID  string   // tid
	SessionID string   // sid
	ClientID  string   // azp, else appid
	TokenID   string   // jti, else uti
	// Email is the first non-empty of the email, upn and preferred_username
	// claims, as the token has it.
	Email string
	// Emails holds every distinct non-empty value of the email, upn and
	// preferred_username claims, in that order, canonicalised as
	// revocation.EmailKey does (trimmed, lower case). Each one is a
	// revocation subject (see Keys): an account event may name the user by
	// any of them.
	Emails   []string
	DeviceID string // deviceid
	IDType   string // idtyp ("app" for app-only tokens)
	// Capabilities are the xms_cc values, e.g. ["cp1"].
	Capabilities []string
	// ACRS are the satisfied authentication contexts, e.g. ["c1"].
	ACRS []string
	// ACR is the acr claim (OIDC Core §2, RFC 9068 §2.2.3.1): the
	// authentication context class the user's authentication satisfied,
	// compared against RFC 9470 acr_values. Empty when absent.
	ACR string
	// AuthTime is the auth_time claim (OIDC Core §2, RFC 9068 §2.2.3.1):
	// when the user last actively authenticated, compared against RFC 9470
	// max_age. Zero when absent.
	AuthTime time.Time
	// IPAddr is the ipaddr claim: the address the IdP saw at sign-in.
	IPAddr    string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// Hash is a short, non-reversible hash prefix of the raw token, safe to log.
	Hash string
	// Raw holds every claim as decoded JSON, for custom checks.
	Raw map[string]any

	keys []revocation.Key
}

// HasCapability reports whether xms_cc contains c, compared case-insensitively.
func (c *Claims) HasCapability(capability string) bool {
	for _, v := range c.Capabilities {
		if strings.EqualFold(v, capability) {
			return true
		}
	}
	return false
}

// HasACR reports whether acrs contains the authentication context id.
func (c *Claims) HasACR(id string) bool {
	for _, v := range c.ACRS {
		if v == id {
			return true
		}
	}
	return false
}

// Keys returns every revocation subject this token belongs to. The slice is
// computed once and shared: do not modify it.
func (c *Claims) Keys() []revocation.Key {
	if c.keys == nil {
		c.keys = c.computeKeys()
	}
	return c.keys
}

// Seal computes derived fields. Validators call it before handing Claims out,
// so that Keys does not write to a shared value.
func (c *Claims) Seal() *Claims {
	c.keys = c.computeKeys()
	return c
}

func (c *Claims) computeKeys() []revocation.Key {
	ks := make([]revocation.Key, 0, 6+max(len(c.Emails), 1))
	if c.TenantID != "" && c.ObjectID != "" {
		ks = append(ks, revocation.ObjectKey(c.TenantID, c.ObjectID))
	}
	if c.Issuer != "" && c.Subject != "" {
		ks = append(ks, revocation.IssuerSubjectKey(c.Issuer, c.Subject))
	}
	if c.Issuer != "" && c.SessionID != "" {
		ks = append(ks, revocation.SessionKey(c.Issuer, c.SessionID))
	}
	if c.Issuer != "" && c.ClientID != "" {
		ks = append(ks, revocation.ClientKey(c.Issuer, c.ClientID))
	}
	// One key per distinct address: Email (for Claims built by hand without
	// Emails) and every one of Emails.
	emailStart := len(ks)
	addEmail := func(e string) {
		k := revocation.EmailKey(e)
		if k.ID == "" || slices.Contains(ks[emailStart:], k) {
			return
		}
		ks = append(ks, k)
	}
	addEmail(c.Email)
	for _, e := range c.Emails {
		addEmail(e)
	}
	if c.Issuer != "" && c.TokenID != "" {
		ks = append(ks, revocation.TokenKey(c.Issuer, c.TokenID))
	}
	if c.Issuer != "" && c.DeviceID != "" {
		ks = append(ks, revocation.DeviceKey(c.Issuer, c.DeviceID))
	}
	return ks
}
