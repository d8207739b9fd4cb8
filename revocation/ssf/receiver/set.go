package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/internal/jose"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/internal/setjson"
)

func (r *Receiver) parse(ctx context.Context, raw []byte) (*ssf.SET, error) {
	if int64(len(raw)) > r.cfg.maxBody {
		return nil, reject(CodeInvalidRequest, "SET is %d bytes, more than the limit of %d", len(raw), r.cfg.maxBody)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, reject(CodeInvalidRequest, "empty body: expected a compact-serialised SET")
	}
	// The one compact-JWS split (jose.SplitJWS), as for access tokens: three
	// parts, canonical base64url, a strict JSON header with string alg, kid
	// and typ, no crit.
	j, err := jose.SplitJWS(string(raw), int(r.cfg.maxBody))
	if err != nil {
		return nil, rejectErr(CodeInvalidRequest, err, "%v", err)
	}
	set := &ssf.SET{Hash: jose.Hash(raw), Algorithm: j.Alg, KeyID: j.Kid}
	if err := j.CheckAlg(func(alg string) bool { return r.algs[alg] }); err != nil {
		return nil, rejectErr(CodeInvalidKey, err, "%v", err)
	}
	// RFC 8417 §2.3 registers "secevent+jwt"; media types are
	// case-insensitive (RFC 7515 §4.1.9) and some transmitters send the full
	// "application/secevent+jwt".
	if !strings.EqualFold(j.Typ, "secevent+jwt") && !strings.EqualFold(j.Typ, "application/secevent+jwt") {
		return nil, reject(CodeInvalidRequest, "JWS header typ is %q, expected \"secevent+jwt\"", jose.Clip(j.Typ))
	}

	// Signature. The key look-up reads alg and kid (keyfunc checks a JWK's
	// alg and use against them).
	header := map[string]any{"alg": j.Alg}
	if j.HasKID {
		header["kid"] = j.Kid
	}
	key, err := r.keyfunc(ctx, &jwt.Token{Header: header, Method: jose.Methods[j.Alg]})
	var se *Error
	switch {
	case errors.Is(err, ErrKeysUnavailable):
		// No key could be obtained: temporary, the SET is delivered again.
		return nil, err
	case errors.As(err, &se):
		return nil, se
	case err != nil:
		return nil, rejectErr(CodeInvalidKey, err, "signing key %q cannot be used for this SET (its JWK's alg or use does not fit)", jose.Clip(set.KeyID))
	}
	keys, err := r.fitting(j.Alg, key)
	if err != nil {
		return nil, rejectErr(CodeInvalidKey, err, "signing key %q is not acceptable: %v", jose.Clip(set.KeyID), err)
	}
	if _, err := jose.VerifyJWS(&j, keys); err != nil {
		return nil, rejectErr(CodeInvalidKey, err, "signature does not verify with key %q", jose.Clip(set.KeyID))
	}

	// Claims.
	m, err := j.Payload()
	if err != nil {
		return nil, rejectErr(CodeInvalidRequest, err, "SET %v", err)
	}
	if err := r.claims(set, m); err != nil {
		return nil, err
	}
	return set, nil
}

// fitting returns the keys that may verify alg (jose.KeyFits, the access
// tokens' rule: the key type and curve match the algorithm, RSA keys have
// at least Limits.MinRSAKeyBits bits; a symmetric key never fits). A
// VerificationKeySet (a SET without kid) keeps the keys that fit, and is
// refused when none does.
func (r *Receiver) fitting(alg string, key any) ([]any, error) {
	ks, isSet := key.(jwt.VerificationKeySet)
	if !isSet {
		if err := jose.KeyFits(alg, key, r.cfg.minRSABits); err != nil {
			return nil, err
		}
		return []any{key}, nil
	}
	var out []any
	var first error
	for _, k := range ks.Keys {
		if err := jose.KeyFits(alg, k, r.cfg.minRSABits); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		if first == nil {
			first = errors.New("the key set is empty")
		}
		return nil, fmt.Errorf("no key fits alg %s: %w", alg, first)
	}
	return out, nil
}

func (r *Receiver) claims(set *ssf.SET, m map[string]json.RawMessage) error {
	var err error
	// jti first, so that later rejections can name it.
	if set.JTI, err = setjson.String(m, "jti"); err != nil {
		return reject(CodeInvalidRequest, "jti: %v", err)
	}
	if set.JTI == "" {
		return reject(CodeInvalidRequest, "jti is missing")
	}
	if set.Issuer, err = setjson.String(m, "iss"); err != nil {
		return reject(CodeInvalidRequest, "iss: %v", err)
	}
	if set.Issuer == "" {
		return reject(CodeInvalidRequest, "iss is missing")
	}
	if set.Issuer != r.cfg.issuer {
		return reject(CodeInvalidIssuer, "iss %q is not the configured transmitter %q", set.Issuer, r.cfg.issuer)
	}
	if set.Audience, _, err = jose.ClaimStrings(m, "aud"); err != nil {
		return rejectErr(CodeInvalidRequest, err, "%v", err)
	}
	if !r.audienceOK(set.Audience) {
		return reject(CodeInvalidAudience, "aud %q does not contain any of %q", set.Audience, r.cfg.audiences)
	}
	iat, ok, err := jose.ClaimTime(m, "iat")
	switch {
	case err != nil:
		return rejectErr(CodeInvalidRequest, err, "%v", err)
	case !ok:
		return reject(CodeInvalidRequest, "iat is missing")
	}
	set.IssuedAt = iat
	now := r.cfg.now()
	if iat.Before(now.Add(-r.cfg.iatPast)) {
		return reject(CodeInvalidRequest, "iat %s is more than %v in the past", iat.UTC().Format(time.RFC3339), r.cfg.iatPast)
	}
	if iat.After(now.Add(r.cfg.iatFuture)) {
		return reject(CodeInvalidRequest, "iat %s is more than %v in the future", iat.UTC().Format(time.RFC3339), r.cfg.iatFuture)
	}
	if _, ok := m["exp"]; ok {
		return reject(CodeInvalidRequest, "exp must not be present in a SET")
	}
	if _, ok := m["sub"]; ok {
		return reject(CodeInvalidRequest, "top-level sub must not be present in a SET; use sub_id")
	}
	// txn is a string per RFC 8417, but some transmitters send a number:
	// it is only for correlation, so keep its JSON text rather than refuse.
	if set.Txn, err = setjson.String(m, "txn"); err != nil {
		set.Txn = string(m["txn"])
		if len(set.Txn) > setjson.MaxLen {
			set.Txn = set.Txn[:setjson.MaxLen]
		}
	}
	toe, hasTOE, err := jose.ClaimTime(m, "toe")
	if err != nil {
		return rejectErr(CodeInvalidRequest, err, "%v", err)
	}
	if hasTOE {
		set.TimeOfEvent = toe
	}

	// Events: exactly one, an object.
	rawEvents, ok := m["events"]
	if !ok {
		return reject(CodeInvalidRequest, "events is missing")
	}
	var events map[string]json.RawMessage
	if err := json.Unmarshal(rawEvents, &events); err != nil || events == nil {
		return reject(CodeInvalidRequest, "events is not a JSON object")
	}
	if len(events) != 1 {
		return reject(CodeInvalidRequest, "events has %d members, expected exactly one", len(events))
	}
	for typ, raw := range events {
		set.EventType = typ
		if err := json.Unmarshal(raw, &set.Event); err != nil || set.Event == nil {
			return reject(CodeInvalidRequest, "event %q payload is not a JSON object", typ)
		}
	}
	if set.EventType == "" {
		return reject(CodeInvalidRequest, "event type URI is empty")
	}

	// Subject: sub_id, else the legacy in-event subject.
	if raw, ok := m["sub_id"]; ok && !bytes.Equal(raw, []byte("null")) {
		if set.Subject, err = ssf.ParseSubject(raw); err != nil {
			return reject(CodeInvalidRequest, "sub_id: %v", err)
		}
	} else if raw, ok := set.Event["subject"]; ok && !bytes.Equal(raw, []byte("null")) {
		if set.Subject, err = ssf.ParseSubject(raw); err != nil {
			return reject(CodeInvalidRequest, "event subject: %v", err)
		}
	}

	// Event time: event_timestamp, toe, iat.
	set.EventTime = set.IssuedAt
	if hasTOE {
		set.EventTime = set.TimeOfEvent
	}
	ts, ok, err := jose.ClaimTime(set.Event, "event_timestamp")
	if err != nil {
		return rejectErr(CodeInvalidRequest, err, "event %v", err)
	}
	if ok {
		set.EventTime = ts
	}
	if set.EventTime.After(now.Add(r.cfg.iatFuture)) {
		return reject(CodeInvalidRequest, "event time %s is more than %v in the future", set.EventTime.UTC().Format(time.RFC3339), r.cfg.iatFuture)
	}
	return nil
}

func (r *Receiver) audienceOK(aud []string) bool {
	for _, a := range aud {
		for _, want := range r.cfg.audiences {
			if a == want {
				return true
			}
		}
	}
	return false
}
