package receiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/internal/setjson"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caekit/caekit/internal/jose"
)

// setHash returns a short SHA-256 prefix of a raw SET (or any token), safe to log.
func setHash(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:6])
}

// b64 decodes base64url strictly: unpadded and canonical (jose.B64, as for
// access tokens), so that one SET has exactly one encoding.
var b64 = jose.B64

func (r *Receiver) parse(ctx context.Context, raw []byte) (*ssf.SET, error) {
	if int64(len(raw)) > r.cfg.maxBody {
		return nil, reject(CodeInvalidRequest, "SET is %d bytes, more than the limit of %d", len(raw), r.cfg.maxBody)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, reject(CodeInvalidRequest, "empty body: expected a compact-serialised SET")
	}
	parts := strings.Split(string(raw), ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, reject(CodeInvalidRequest, "encrypted SETs (JWE) are not supported")
	default:
		return nil, reject(CodeInvalidRequest, "not a compact JWS: %d dot-separated parts, expected 3", len(parts))
	}
	set := &ssf.SET{Hash: setHash(raw)}

	// Header.
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, reject(CodeInvalidRequest, "JWS header is not canonical unpadded base64url: %v", err)
	}
	if err := jose.CheckJSON(hb); err != nil {
		return nil, rejectErr(CodeInvalidRequest, err, "JWS header: %v", err)
	}
	var header map[string]any
	if err := json.Unmarshal(hb, &header); err != nil || header == nil {
		return nil, reject(CodeInvalidRequest, "JWS header is not a JSON object")
	}
	alg, isStr := header["alg"].(string)
	if !isStr && header["alg"] != nil {
		return nil, reject(CodeInvalidRequest, "JWS header alg is not a string")
	}
	if alg == "" {
		return nil, reject(CodeInvalidRequest, "JWS header has no alg")
	}
	if !r.algs[alg] {
		return nil, reject(CodeInvalidKey, "alg %q is not allowed", jose.Clip(alg))
	}
	set.Algorithm = alg
	typ, isStr := header["typ"].(string)
	if !isStr && header["typ"] != nil {
		return nil, reject(CodeInvalidRequest, "JWS header typ is not a string")
	}
	// RFC 8417 §2.3 registers "secevent+jwt"; media types are
	// case-insensitive (RFC 7515 §4.1.9) and some transmitters send the full
	// "application/secevent+jwt".
	if !strings.EqualFold(typ, "secevent+jwt") && !strings.EqualFold(typ, "application/secevent+jwt") {
		return nil, reject(CodeInvalidRequest, "JWS header typ is %q, expected \"secevent+jwt\"", jose.Clip(typ))
	}
	if _, ok := header["crit"]; ok {
		return nil, reject(CodeInvalidRequest, "JWS header has crit extensions, which this receiver does not understand")
	}
	if v, ok := header["kid"]; ok {
		kid, isStr := v.(string)
		if !isStr {
			return nil, reject(CodeInvalidRequest, "JWS header kid is not a string")
		}
		set.KeyID = kid
	}

	// Signature.
	method := jose.Methods[alg]
	if method == nil {
		return nil, reject(CodeInvalidKey, "alg %q is not supported", jose.Clip(alg))
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, reject(CodeInvalidRequest, "JWS signature is not canonical unpadded base64url: %v", err)
	}
	key, err := r.keyfunc(ctx, &jwt.Token{Header: header, Method: method})
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
	keys, err := r.fitting(alg, key)
	if err != nil {
		return nil, rejectErr(CodeInvalidKey, err, "signing key %q is not acceptable: %v", jose.Clip(set.KeyID), err)
	}
	if err := verify(method, parts[0]+"."+parts[1], sig, keys); err != nil {
		return nil, rejectErr(CodeInvalidKey, err, "signature does not verify with key %q", jose.Clip(set.KeyID))
	}

	// Claims.
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, reject(CodeInvalidRequest, "JWS payload is not canonical unpadded base64url: %v", err)
	}
	if err := jose.CheckJSON(pb); err != nil {
		return nil, rejectErr(CodeInvalidRequest, err, "SET payload: %v", err)
	}
	if err := r.claims(set, pb); err != nil {
		return nil, err
	}
	return set, nil
}

// verify checks sig with each of keys until one verifies.
func verify(method jwt.SigningMethod, signing string, sig []byte, keys []any) error {
	err := errors.New("no key to try")
	for _, k := range keys {
		if err = method.Verify(signing, sig, k); err == nil {
			return nil
		}
	}
	return err
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

func (r *Receiver) claims(set *ssf.SET, payload []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return reject(CodeInvalidRequest, "SET payload is not a JSON object")
	}
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
	if set.Audience, err = audience(m["aud"]); err != nil {
		return reject(CodeInvalidRequest, "aud: %v", err)
	}
	if !r.audienceOK(set.Audience) {
		return reject(CodeInvalidAudience, "aud %q does not contain any of %q", set.Audience, r.cfg.audiences)
	}
	iat, ok, err := numericDate(m, "iat")
	switch {
	case err != nil:
		return reject(CodeInvalidRequest, "iat: %v", err)
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
	toe, hasTOE, err := numericDate(m, "toe")
	if err != nil {
		return reject(CodeInvalidRequest, "toe: %v", err)
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
	ts, ok, err := numericDate(set.Event, "event_timestamp")
	if err != nil {
		return reject(CodeInvalidRequest, "event_timestamp: %v", err)
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

func audience(raw json.RawMessage) ([]string, error) {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("must be a string or an array of strings")
	}
	return many, nil
}

// numericDate reads an optional NumericDate (seconds since the epoch, possibly
// fractional).
func numericDate(m map[string]json.RawMessage, name string) (time.Time, bool, error) {
	raw, ok := m[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, false, errors.New("must be a number (NumericDate)")
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%s is not a plausible NumericDate", n)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}
