package receiver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation/ssf"
	"github.com/caekit/caekit/revocation/ssf/receiver"
	"github.com/caekit/caekit/revocation/ssf/ssftest"
)

// TestSETClaimRule (issue 17 step 1) guards that SETs read aud, iat, toe
// and event_timestamp with the access tokens' claim rule (jose.ClaimStrings,
// jose.ClaimTime): JSON null is the wrong type, not an absent claim, and a
// NumericDate lies in [0, 2^33]. RFC 8417 section 2.2 defines these as JWT
// claims (RFC 7519 section 2: StringOrURI, NumericDate), none of them null.
// RFC 8935 codes that changed: "aud":null was invalid_audience (read as no
// audience), now invalid_request; "toe":null and "event_timestamp":null
// were accepted (read as absent), now invalid_request; a toe of 9e9 (past
// 2^33 but under the old 1e11 bound) was accepted, now invalid_request.
func TestSETClaimRule(t *testing.T) {
	e := newEnv(t)
	payload := func(aud, extraTop, extraEvent string) []byte {
		return fmt.Appendf(nil, `{"iss":%q,"aud":%s,"jti":"jti-%d","iat":%d%s,"sub_id":{"format":"iss_sub","iss":"https://idp.example.test","sub":"alice"},"events":{%q:{"x":1%s}}}`,
			e.tr.Issuer, aud, time.Now().UnixNano(), time.Now().Unix(), extraTop, ssf.RISCAccountDisabled, extraEvent)
	}
	aud := fmt.Sprintf("%q", ssftest.Audience)
	if st, er := e.push(t, e.tr.SignRaw([]byte(rawHeader), payload(aud, "", ""))); st != http.StatusAccepted {
		t.Fatalf("baseline: %d %+v", st, er)
	}
	for _, c := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"aud null", payload("null", "", ""), "claim aud must be a string or an array of strings, not null"},
		{"aud number", payload("7", "", ""), "claim aud must be a string or an array of strings, not a number"},
		{"aud mixed array", payload(`[`+aud+`,1]`, "", ""), "claim aud must hold strings"},
		{"toe null", payload(aud, `,"toe":null`, ""), "claim toe must be a number (NumericDate), not null"},
		{"toe past 2^33", payload(aud, `,"toe":9000000000`, ""), "claim toe is out of range"},
		{"event_timestamp null", payload(aud, "", `,"event_timestamp":null`), "claim event_timestamp must be a number (NumericDate), not null"},
		{"iat string", []byte(strings.Replace(string(payload(aud, "", "")), `"iat":`, `"iat":"1","x":`, 1)), "claim iat must be a number (NumericDate), not a string"},
	} {
		st, er := e.push(t, e.tr.SignRaw([]byte(rawHeader), c.payload))
		if st != http.StatusBadRequest || er.Err != receiver.CodeInvalidRequest || !strings.Contains(er.Description, c.want) {
			t.Errorf("%s: %d %+v, want 400 invalid_request saying %q", c.name, st, er, c.want)
		}
	}
	if n := e.store.puts.Load(); n != 1 {
		t.Errorf("%d events stored, want only the baseline's", n)
	}
}
