package redisstore

import "testing"

// TestDecodeRefusesNonCanonicalValues: FuzzDecode (2 min run) found that
// decode accepts length fields with leading zeros, "+" or "-0", and a time
// field with a "+" sign, so two different stored values decode to the same
// event and encode(decode(s)) != s. Values are only written by encode, so the
// impact is strictness, not safety; but the store should refuse what it
// would never write. Suggested fix in decode: require every length field to
// equal strconv.Itoa of its value (no sign, no leading zeros) and the time
// field to be all ASCII digits. The first input is the fuzzer's minimised
// failing input.
func TestDecodeRefusesNonCanonicalValues(t *testing.T) {
	t.Skip("known bug: decode accepts non-canonical numbers; see the suggested fix above")
	for _, s := range []string{
		"1,00000000000000000000,user_disabled,object,1,01,1,000",
		"1,00000000000000000000,user_disabled,object,+1,1,1,000",
		"1,00000000000000000000,user_disabled,object,-0,2,1,000",
		"1,+0000000000000000005,user_disabled,object,1,1,1,000",
	} {
		if ev, err := decode(s); err == nil {
			t.Errorf("decode(%q) = %+v, want an error (encode would write %q)", s, ev, encode(ev))
		}
	}
}
