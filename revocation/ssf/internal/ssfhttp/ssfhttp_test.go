package ssfhttp

import "testing"

func TestWellKnownURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://tr.example.com":          "https://tr.example.com/.well-known/ssf-configuration",
		"https://tr.example.com/":         "https://tr.example.com/.well-known/ssf-configuration",
		"https://tr.example.com/issuer1":  "https://tr.example.com/.well-known/ssf-configuration/issuer1",
		"https://tr.example.com/a/b/?x=1": "https://tr.example.com/.well-known/ssf-configuration/a/b",
	} {
		if got, err := WellKnownURL(in); err != nil || got != want {
			t.Errorf("WellKnownURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := WellKnownURL("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}
