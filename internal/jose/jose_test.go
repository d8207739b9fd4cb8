package jose

import (
	"strings"
	"testing"
)

// TestCheckURL pins the URL rule shared by the token validator and the SSF
// receiver (issue 13 item 3): https anywhere, plain http only on loopback or
// when the caller opted in, nothing else.
func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://tr.example.com/jwks", false, true},
		{"http://127.0.0.1:8080/jwks", false, true},
		{"http://[::1]:8080/jwks", false, true},
		{"http://localhost/jwks", false, true},
		{"http://tr.example.com/jwks", false, false},
		{"http://127.0.0.1.nip.io/jwks", false, false},
		{"http://10.0.0.1/jwks", false, false},
		{"http://tr.example.com/jwks", true, true},
		{"ftp://tr.example.com/jwks", true, false},
		{"/jwks", false, false},
		{"https:///jwks", false, false},
	} {
		err := CheckURL(c.url, c.insecure, "WithInsecureHTTP")
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, insecure=%t) = %v, want ok=%t", c.url, c.insecure, err, c.ok)
		}
		if err != nil && strings.HasPrefix(c.url, "http://tr.") && !strings.Contains(err.Error(), "WithInsecureHTTP") {
			t.Errorf("CheckURL(%q): %v does not name the opt-in", c.url, err)
		}
	}
}

// TestSameOrigin: scheme, host and port, the default port made explicit.
func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://tr.example.com/", "https://TR.example.com:443/streams", true},
		{"https://tr.example.com/", "http://tr.example.com/streams", false},
		{"https://tr.example.com/", "https://tr.example.com:8443/streams", false},
		{"https://tr.example.com/", "https://evil.example.com/streams", false},
		{"https://tr.example.com/", "https://tr.example.com.evil.test/streams", false},
		{"http://127.0.0.1:1/", "http://127.0.0.1:2/", false},
		{"https://tr.example.com/", "/streams", false},
	} {
		if got := SameOrigin(c.a, c.b); got != c.same {
			t.Errorf("SameOrigin(%q, %q) = %t, want %t", c.a, c.b, got, c.same)
		}
	}
}
