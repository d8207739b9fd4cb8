package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caekit/caekit/revocation"
)

func TestEncodeRoundTrip(t *testing.T) {
	cases := []revocation.Event{
		{ID: "jti-1", Type: revocation.TypeUserDisabled, Subject: revocation.ObjectKey("tid", "oid"), Time: time.Unix(1700000000, 123456789)}, //datelint:ok encoding round-trip data; no store sees it
		{Type: revocation.TypeSessionRevoked, Subject: revocation.SessionKey("https://idp.test", "s,1:2"), Time: time.Unix(1, 0)},
		{ID: "a,b", Type: revocation.TypeCredentialCompromised, Subject: revocation.IssuerSubjectKey("https://iss.example/,x", "sub:1"), Time: time.Unix(0, 1)},
		{ID: strings.Repeat("e", MaxEventIDLen), Type: revocation.TypeTokenClaimsChanged,
			Subject: revocation.TokenKey(strings.Repeat("s", MaxScopeLen), strings.Repeat("i", MaxSubjectIDLen)), Time: maxTime},
	}
	for _, ev := range cases {
		if err := validate(ev); err != nil {
			t.Fatalf("validate(%v): %v", ev, err)
		}
		enc := encode(ev)
		got, err := decode(enc)
		if err != nil {
			t.Fatalf("decode(%q): %v", enc, err)
		}
		if got.ID != ev.ID || got.Type != ev.Type || got.Subject != ev.Subject || !got.Time.Equal(ev.Time) {
			t.Fatalf("round trip: got %+v, want %+v", got, ev)
		}
	}
}

// The Lua script orders events by comparing bytes 3..22 of the encoding as
// strings; that must agree with time order.
func TestEncodedTimeOrdersAsString(t *testing.T) {
	k := revocation.SessionKey("https://idp.test", "s")
	times := []time.Time{time.Unix(0, 1), time.Unix(9, 0), time.Unix(10, 0), time.Unix(1700000000, 5), time.Unix(1700000000, 50), maxTime} //datelint:ok encoding round-trip data; no store sees it
	for i := 1; i < len(times); i++ {
		a := encode(revocation.Event{Type: revocation.TypeSessionRevoked, Subject: k, Time: times[i-1]})
		b := encode(revocation.Event{Type: revocation.TypeSessionRevoked, Subject: k, Time: times[i]})
		if !(a[2:timeEnd] < b[2:timeEnd]) {
			t.Fatalf("%q does not sort before %q", a[2:timeEnd], b[2:timeEnd])
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := encode(revocation.Event{ID: "e", Type: revocation.TypeUserDisabled, Subject: revocation.ObjectKey("t", "o"), Time: time.Unix(5, 0)})
	bad := map[string]string{
		"empty":          "",
		"version":        "2" + good[1:],
		"short header":   "1,00000000000000000005,user_disabled",
		"time width":     strings.Replace(good, "00000000005000000000", "5000000000", 1),
		"time digits":    strings.Replace(good, "00000000005000000000", "0000000000500000000x", 1),
		"type":           strings.Replace(good, "user_disabled", "nope", 1),
		"kind":           strings.Replace(good, "object", "nope", 1),
		"length":         strings.Replace(good, ",1,1,1,", ",1,1,9,", 1),
		"negative":       strings.Replace(good, ",1,1,1,", ",-1,1,1,", 1),
		"over limit":     strings.Replace(good, ",1,1,1,", ",99999,1,1,", 1),
		"trailing bytes": good + "x",
		"no subject id":  strings.Replace(strings.Replace(good, ",1,1,1,", ",1,0,2,", 1), "to", "te", 1),
		"too long":       good + strings.Repeat("x", maxValueLen),
	}
	for name, v := range bad {
		if _, err := decode(v); !errors.Is(err, errBadValue) {
			t.Errorf("%s: decode(%q) error = %v, want errBadValue", name, v, err)
		}
	}
}

func TestValidateBounds(t *testing.T) {
	base := revocation.Event{Type: revocation.TypeUserDisabled, Subject: revocation.ObjectKey("t", "o"), Time: time.Unix(5, 0)}
	mod := map[string]func(*revocation.Event){
		"scope":    func(e *revocation.Event) { e.Subject.Scope = strings.Repeat("s", MaxScopeLen+1) },
		"id":       func(e *revocation.Event) { e.Subject.ID = strings.Repeat("i", MaxSubjectIDLen+1) },
		"event id": func(e *revocation.Event) { e.ID = strings.Repeat("e", MaxEventIDLen+1) },
		"pre-1970": func(e *revocation.Event) { e.Time = time.Unix(-1, 0) },
		"no time":  func(e *revocation.Event) { e.Time = time.Time{} },
		"no type":  func(e *revocation.Event) { e.Type = revocation.TypeUnknown },
		"no id":    func(e *revocation.Event) { e.Subject.ID = "" },
	}
	for name, f := range mod {
		ev := base
		f(&ev)
		if err := validate(ev); err == nil {
			t.Errorf("%s: validate accepted %+v", name, ev)
		}
	}
}

func TestSubjectKeyUnambiguous(t *testing.T) {
	a := subjectKey("p:", revocation.Key{Kind: revocation.KindObject, Scope: "a:b", ID: "c"})
	b := subjectKey("p:", revocation.Key{Kind: revocation.KindObject, Scope: "a", ID: "b:c"})
	if a == b {
		t.Fatalf("distinct subjects share key %q", a)
	}
	if want := "p:rev:object:3:a:b:c"; a != want {
		t.Fatalf("key = %q, want %q", a, want)
	}
}

func TestScanPatternEscapesGlob(t *testing.T) {
	if got, want := scanPattern(`a*b?[c]\`), `a\*b\?\[c\]\\rev:*`; got != want {
		t.Fatalf("scanPattern = %q, want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(revocation.Event{ID: "e", Type: revocation.TypeUserDisabled, Subject: revocation.ObjectKey("t", "o"), Time: time.Unix(5, 0)}))
	f.Add("1,")
	f.Fuzz(func(t *testing.T, s string) {
		ev, err := decode(s)
		if err != nil {
			return
		}
		if err := validate(ev); err != nil {
			t.Fatalf("decode accepted an invalid event %+v: %v", ev, err)
		}
		if got := encode(ev); got != s {
			t.Fatalf("re-encoding %q gives %q", s, got)
		}
	})
}
