package ssf

import (
	"encoding/json"
	"fmt"
	"github.com/caekit/caekit/revocation/ssf/internal/setjson"
	"net/netip"
	"strings"

	"github.com/caekit/caekit/revocation"
)

// The subject identifier formats of RFC 9493 and SSF.
const (
	formatAccount         = "account"
	formatEmail           = "email"
	formatIssSub          = "iss_sub"
	formatOpaque          = "opaque"
	formatPhoneNumber     = "phone_number"
	formatDID             = "did"
	formatURI             = "uri"
	formatAliases         = "aliases"
	formatComplex         = "complex"
	formatJWTID           = "jwt_id"
	formatIPAddresses     = "ip-addresses"
	formatSAMLAssertionID = "saml_assertion_id"
)

const (
	maxAliases     = 32
	maxIPAddresses = 64
)

// Subject is a parsed subject identifier (RFC 9493 sub_id, or the legacy
// in-event "subject"). Only the members of its Format are set.
type Subject struct {
	// Format is the identifier format: one of RFC 9493's "account",
	// "email", "iss_sub", "opaque", "phone_number", "did", "uri" and
	// "aliases", or SSF's "complex", "jwt_id", "ip-addresses" and
	// "saml_assertion_id". For a legacy subject_type it is the
	// equivalent RFC 9493 format ("iss-sub" becomes "iss_sub", "phone"
	// becomes "phone_number", "id_token_claims" becomes "iss_sub").
	Format string
	// URI is the uri member (account, uri).
	URI string
	// Email is the email member.
	Email string
	// Iss is the iss member (iss_sub, jwt_id).
	Iss string
	// Sub is the sub member (iss_sub).
	Sub string
	// ID is the id member (opaque).
	ID string
	// PhoneNumber is the phone_number member.
	PhoneNumber string
	// URL is the url member (did).
	URL string
	// JTI is the jti member (jwt_id).
	JTI string
	// Issuer and AssertionID are the saml_assertion_id members.
	Issuer, AssertionID string
	// IPAddresses are the ip-addresses member.
	IPAddresses []netip.Addr
	// Identifiers are the aliases (each not itself aliases).
	Identifiers []*Subject
	// The complex members; nil when absent (an absent member matches anything).
	User, Session, Tenant, Application, Device, OrgUnit, Group *Subject
	// Unknown lists complex members this receiver does not know.
	Unknown []string
	// Legacy is true for an in-event "subject" with "subject_type".
	Legacy bool
}

// String renders s compactly for logs (it may contain personal data such as
// e-mail addresses; subjects are not secrets).
func (s *Subject) String() string {
	if s == nil {
		return "<none>"
	}
	switch s.Format {
	case formatAccount, formatURI:
		return s.Format + ":" + s.URI
	case formatEmail:
		return "email:" + s.Email
	case formatIssSub:
		return "iss_sub:" + s.Iss + "|" + s.Sub
	case formatOpaque:
		return "opaque:" + s.ID
	case formatPhoneNumber:
		return "phone_number:" + s.PhoneNumber
	case formatDID:
		return "did:" + s.URL
	case formatJWTID:
		return "jwt_id:" + s.Iss + "|" + s.JTI
	case formatSAMLAssertionID:
		return "saml_assertion_id:" + s.Issuer + "|" + s.AssertionID
	case formatIPAddresses:
		return fmt.Sprintf("ip-addresses:%v", s.IPAddresses)
	case formatAliases:
		parts := make([]string, len(s.Identifiers))
		for i, id := range s.Identifiers {
			parts[i] = id.String()
		}
		return "aliases[" + strings.Join(parts, ",") + "]"
	case formatComplex:
		var b strings.Builder
		b.WriteString("complex{")
		for _, m := range s.members() {
			if b.Len() > len("complex{") {
				b.WriteString(",")
			}
			b.WriteString(m.name + "=" + m.s.String())
		}
		b.WriteString("}")
		return b.String()
	}
	return s.Format + ":?"
}

type member struct {
	name string
	s    *Subject
}

func (s *Subject) members() []member {
	var ms []member
	for _, m := range []member{{"user", s.User}, {"session", s.Session}, {"tenant", s.Tenant},
		{"application", s.Application}, {"device", s.Device}, {"org_unit", s.OrgUnit}, {"group", s.Group}} {
		if m.s != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// ParseSubject parses one subject identifier object. It accepts every RFC
// 9493 and SSF format and the legacy subject_type form; an unknown format is
// returned as is (it maps onto no Key). It refuses an identifier whose format
// lacks a required member or has one of the wrong type.
func ParseSubject(raw []byte) (*Subject, error) { return parseSubject(raw, 0) }

func parseSubject(raw []byte, depth int) (*Subject, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("subject identifier is not a JSON object")
	}
	s := &Subject{}
	format, err := setjson.String(m, "format")
	if err != nil {
		return nil, err
	}
	if format == "" {
		legacy, err := setjson.String(m, "subject_type")
		if err != nil {
			return nil, err
		}
		switch {
		case legacy == "" && hasComplexMember(m):
			// A complex subject sent without "format":"complex", as some
			// transmitters do (openid/sharedsignals#53; Okta's SETs carry
			// {"user": {...}} in the event). Its members are read as those
			// of a complex subject: an absent member is unconstrained (SSF
			// §3.3.1), which the DefaultMapper never widens to "every
			// user" (a subject with no user, session, device or
			// application maps to nothing).
			format = formatComplex
		case legacy == "":
			return nil, fmt.Errorf("subject identifier has no format (nor subject_type, nor a complex subject member)")
		}
	}
	if format == "" {
		legacy, _ := setjson.String(m, "subject_type")
		s.Legacy = true
		switch legacy {
		case "iss-sub", "iss_sub":
			// Google RISC and login.gov send "iss-sub"; the RFC 9493 name
			// is "iss_sub".
			format = formatIssSub
		case "id_token_claims":
			// Google RISC: the claims of the user's ID token, iss and sub
			// (or, without them, email).
			format = formatIssSub
			if iss, _ := setjson.String(m, "iss"); iss == "" {
				if email, _ := setjson.String(m, "email"); email != "" {
					format = formatEmail
				}
			}
		case "phone":
			format = formatPhoneNumber
		default:
			format = strings.ReplaceAll(legacy, "-", "_")
			if legacy == formatIPAddresses {
				format = legacy
			}
		}
	}
	s.Format = format
	need := func(name string, dst *string) error {
		v, err := setjson.String(m, name)
		if err != nil {
			return err
		}
		if v == "" {
			return fmt.Errorf("subject format %q requires member %q", format, name)
		}
		*dst = v
		return nil
	}
	switch format {
	case formatAccount:
		if err := need("uri", &s.URI); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(s.URI, "acct:") {
			return nil, fmt.Errorf("account subject uri must be an acct: URI")
		}
	case formatURI:
		err = need("uri", &s.URI)
	case formatEmail:
		err = need("email", &s.Email)
	case formatIssSub:
		if err = need("iss", &s.Iss); err == nil {
			err = need("sub", &s.Sub)
		}
	case formatOpaque:
		err = need("id", &s.ID)
	case formatPhoneNumber:
		err = need("phone_number", &s.PhoneNumber)
	case formatDID:
		err = need("url", &s.URL)
	case formatJWTID:
		if err = need("iss", &s.Iss); err == nil {
			err = need("jti", &s.JTI)
		}
	case formatSAMLAssertionID:
		if err = need("issuer", &s.Issuer); err == nil {
			err = need("assertion_id", &s.AssertionID)
		}
	case formatIPAddresses:
		var ips []string
		if err := strictArray(m, "ip-addresses", &ips); err != nil {
			return nil, err
		}
		if len(ips) == 0 || len(ips) > maxIPAddresses {
			return nil, fmt.Errorf("ip-addresses subject needs 1 to %d addresses, got %d", maxIPAddresses, len(ips))
		}
		for _, ip := range ips {
			a, perr := netip.ParseAddr(ip)
			if perr != nil {
				return nil, fmt.Errorf("ip-addresses subject: %q is not an IP address", ip)
			}
			s.IPAddresses = append(s.IPAddresses, a)
		}
	case formatAliases:
		if depth > 0 {
			return nil, fmt.Errorf("aliases subject must not be nested")
		}
		var ids []json.RawMessage
		if err := strictArray(m, "identifiers", &ids); err != nil {
			return nil, err
		}
		if len(ids) == 0 || len(ids) > maxAliases {
			return nil, fmt.Errorf("aliases subject needs 1 to %d identifiers, got %d", maxAliases, len(ids))
		}
		for i, raw := range ids {
			id, err := parseSubject(raw, depth+1)
			if err != nil {
				return nil, fmt.Errorf("aliases identifier %d: %w", i, err)
			}
			if id.Format == formatAliases {
				return nil, fmt.Errorf("aliases identifier %d: aliases must not be nested", i)
			}
			s.Identifiers = append(s.Identifiers, id)
		}
	case formatComplex:
		if depth > 0 {
			return nil, fmt.Errorf("complex subject must not be nested")
		}
		dsts := map[string]**Subject{"user": &s.User, "session": &s.Session, "tenant": &s.Tenant,
			"application": &s.Application, "device": &s.Device, "org_unit": &s.OrgUnit, "group": &s.Group}
		for name, raw := range m {
			if name == "format" {
				continue
			}
			dst, ok := dsts[name]
			if !ok {
				s.Unknown = append(s.Unknown, name)
				continue
			}
			sub, err := parseSubject(raw, depth+1)
			if err != nil {
				return nil, fmt.Errorf("complex member %q: %w", name, err)
			}
			if sub.Format == formatComplex {
				return nil, fmt.Errorf("complex member %q must not be complex", name)
			}
			*dst = sub
		}
		if len(s.members()) == 0 {
			return nil, fmt.Errorf("complex subject has no members")
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// complexMembers are the member names of a complex subject.
var complexMembers = []string{"user", "session", "tenant", "application", "device", "org_unit", "group"}

// hasComplexMember reports whether m has a member of a complex subject.
func hasComplexMember(m map[string]json.RawMessage) bool {
	for _, name := range complexMembers {
		if _, ok := m[name]; ok {
			return true
		}
	}
	return false
}

func strictArray(m map[string]json.RawMessage, name string, dst any) error {
	raw, ok := m[name]
	if !ok {
		return fmt.Errorf("subject requires member %q", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("member %q must be an array of the right type", name)
	}
	return nil
}

// SubjectMapper maps the subject of a validated SET onto the revocation Keys
// whose tokens the event applies to. Returning no Keys means the event cannot
// be enforced (it is acknowledged and counted as OutcomeUnmapped). An error is
// treated like no Keys, with the error logged. Implementations must be safe
// for concurrent use.
type SubjectMapper interface {
	// MapSubject returns the Keys that subject s of set identifies.
	MapSubject(set *SET, s *Subject) ([]revocation.Key, error)
}

// SubjectMapperFunc adapts a function to SubjectMapper.
type SubjectMapperFunc func(set *SET, s *Subject) ([]revocation.Key, error)

// MapSubject calls f.
func (f SubjectMapperFunc) MapSubject(set *SET, s *Subject) ([]revocation.Key, error) {
	return f(set, s)
}

// DefaultMapper is the built-in SubjectMapper. Its zero value maps:
//
//	iss_sub            IssuerSubjectKey(iss, sub)         (token iss+sub)
//	email              EmailKey(email)                    (token email/upn)
//	account acct:X     EmailKey(X)                        (token email/upn)
//	jwt_id             TokenKey(iss, jti)                 (token iss+jti/uti)
//	opaque             for CAEP session-revoked: SessionKey(iss, id) (token sid; the
//	                   spec's simple-subject example names the session);
//	                   otherwise IssuerSubjectKey(SET iss, id), or
//	                   ObjectKey(OpaqueTenant, id) when OpaqueTenant is set
//	                                                      (token sub, or tid+oid)
//	aliases            every identifier that maps, together
//	complex            the narrowest member that maps, in this order:
//	                   session  -> SessionKey(iss, id)   (token iss+sid)
//	                   user     with tenant (both opaque) -> ObjectKey(tenant, user)
//	                            (token tid+oid), else the user identifier as above
//	                   device   -> DeviceKey(iss, id)    (token iss+deviceid)
//	                   application -> ClientKey(iss, id) (token iss+azp/appid)
//	                   where a session, device or application member's id is its
//	                   opaque id, iss_sub sub or uri/url.
//	                   A tenant, org_unit or group alone maps to nothing: a
//	                   whole-tenant revocation is not inferred from a subject.
//	phone_number, did, uri, ip-addresses, saml_assertion_id: nothing (no
//	access-token claim carries them); use a custom SubjectMapper.
//
// Narrowest-first means {user, session} revokes the session only, and
// {user, application} revokes the user everywhere: where the store cannot
// express the intersection, the mapper errs on revoking more.
type DefaultMapper struct {
	// OpaqueTenant, when set, maps opaque subjects (and opaque complex users
	// without a tenant) onto ObjectKey(OpaqueTenant, id) instead of
	// IssuerSubjectKey(SET iss, id). Use it when the transmitter's opaque ids
	// are the object ids (oid) of a single tenant.
	OpaqueTenant string
	// NoComplexObjectKey disables mapping a complex {tenant, user} with two
	// opaque members onto ObjectKey.
	NoComplexObjectKey bool
	// TokenIssuer is the issuer of the access tokens whose session, device
	// and client ids (and opaque subjects) this transmitter names. Those ids
	// mean something only within their issuer, so their keys are scoped by
	// it. An iss_sub or jwt_id subject that names the SET's own iss is
	// mapped under TokenIssuer too: the transmitter's users are its token
	// issuer's (Google's RISC SETs, for one, name "https://accounts.google.com/"
	// while its ID tokens carry "https://accounts.google.com"). Default: the
	// SET's own iss, which is right when the IdP signs SETs and access
	// tokens under one issuer.
	TokenIssuer string
}

// MapSubject implements SubjectMapper.
func (d DefaultMapper) MapSubject(set *SET, s *Subject) ([]revocation.Key, error) {
	if s == nil {
		return nil, nil
	}
	iss := d.TokenIssuer
	setIss := ""
	if set != nil {
		if iss == "" {
			iss = set.Issuer
		}
		if d.TokenIssuer != "" {
			setIss = set.Issuer
		}
		if set.EventType == CAEPSessionRevoked && s.Format == formatOpaque {
			return []revocation.Key{revocation.SessionKey(iss, s.ID)}, nil
		}
	}
	return d.mapIn(iss, setIss, s), nil
}

func (d DefaultMapper) mapOne(iss string, s *Subject) []revocation.Key {
	return d.mapIn(iss, "", s)
}

// mapIn maps s; setIss is the SET's iss, whose own users are those of the
// token issuer iss.
func (d DefaultMapper) mapIn(iss, setIss string, s *Subject) []revocation.Key {
	switch s.Format {
	case formatIssSub:
		if setIss != "" && s.Iss == setIss {
			return []revocation.Key{revocation.IssuerSubjectKey(iss, s.Sub)}
		}
		return []revocation.Key{revocation.IssuerSubjectKey(s.Iss, s.Sub)}
	case formatEmail:
		return []revocation.Key{revocation.EmailKey(s.Email)}
	case formatAccount:
		return []revocation.Key{revocation.EmailKey(strings.TrimPrefix(s.URI, "acct:"))}
	case formatJWTID:
		if setIss != "" && s.Iss == setIss {
			return []revocation.Key{revocation.TokenKey(iss, s.JTI)}
		}
		return []revocation.Key{revocation.TokenKey(s.Iss, s.JTI)}
	case formatOpaque:
		if d.OpaqueTenant != "" {
			return []revocation.Key{revocation.ObjectKey(d.OpaqueTenant, s.ID)}
		}
		return []revocation.Key{revocation.IssuerSubjectKey(iss, s.ID)}
	case formatAliases:
		var ks []revocation.Key
		for _, id := range s.Identifiers {
			ks = appendUnique(ks, d.mapIn(iss, setIss, id)...)
		}
		return ks
	case formatComplex:
		if id := memberID(s.Session); id != "" {
			return []revocation.Key{revocation.SessionKey(iss, id)}
		}
		if s.User != nil {
			if !d.NoComplexObjectKey && s.Tenant != nil && s.Tenant.Format == formatOpaque && s.User.Format == formatOpaque {
				return []revocation.Key{revocation.ObjectKey(s.Tenant.ID, s.User.ID)}
			}
			if ks := d.mapIn(iss, setIss, s.User); len(ks) > 0 {
				return ks
			}
		}
		if id := memberID(s.Device); id != "" {
			return []revocation.Key{revocation.DeviceKey(iss, id)}
		}
		if id := memberID(s.Application); id != "" {
			return []revocation.Key{revocation.ClientKey(iss, id)}
		}
	}
	return nil
}

func appendUnique(ks []revocation.Key, add ...revocation.Key) []revocation.Key {
next:
	for _, k := range add {
		for _, h := range ks {
			if h == k {
				continue next
			}
		}
		ks = append(ks, k)
	}
	return ks
}

// memberID is the identifier of a session, device or application member.
func memberID(s *Subject) string {
	if s == nil {
		return ""
	}
	switch s.Format {
	case formatOpaque:
		return s.ID
	case formatIssSub:
		return s.Sub
	case formatURI, formatAccount:
		return s.URI
	case formatDID:
		return s.URL
	}
	return ""
}
