package redisstore

import "testing"

// TestDecodeRefusesNonCanonicalValues: FuzzDecode (2 min run) found that
// decode accepted length fields with leading zeros, "+" or "-0", and a time
// field with a "+" sign, so two different stored values decoded to the same
// event and encode(decode(s)) != s. Values are only written by encode, so the
// impact was strictness, not safety; but the store refuses what it would
// never write. The first input is the fuzzer's minimised failing input, also
// kept as a seed in testdata/fuzz/FuzzDecode.
func TestDecodeRefusesNonCanonicalValues(t *testing.T) {
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
