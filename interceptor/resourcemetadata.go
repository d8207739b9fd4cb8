package interceptor

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/caekit/caekit/interceptor/challenge"
)

// WithResourceMetadata adds resource_metadata="<metadataURL>" to every
// challenge the Server issues, on every front door (the gRPC
// www-authenticate trailer and the cae.v1.ClaimsChallenge detail, the HTTP
// WWW-Authenticate header, Connect's error metadata): the URL of the
// resource's OAuth 2.0 Protected Resource Metadata document (RFC 9728 §5.1,
// "WWW-Authenticate Response"), from which clients such as MCP clients
// discover the authorization servers to get a token from.
//
// metadataURL must be an absolute https URL (http only for a loopback
// host, for development) without a fragment, as RFC 9728 §3 requires of
// the metadata URL; it is usually the resource identifier with
// /.well-known/oauth-protected-resource inserted after the host (RFC 9728
// §3.1). caehttp.ProtectedResourceMetadata serves the document.
func WithResourceMetadata(metadataURL string) Option {
	return func(o *options) {
		if err := checkMetadataURL(metadataURL); err != "" {
			o.fail("WithResourceMetadata: %s", err)
			return
		}
		o.resourceMetadata = metadataURL
	}
}

// checkMetadataURL returns what is wrong with a protected resource metadata
// URL, or "".
func checkMetadataURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "metadata URL " + strconv.Quote(s) + " must be an absolute URL"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "metadata URL " + strconv.Quote(s) + " must not have a fragment"
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return "metadata URL " + strconv.Quote(s) + " must use https (http only for a loopback host)"
	}
	if strings.ContainsAny(s, "\"\\\r\n\t ") {
		return "metadata URL " + strconv.Quote(s) + " must not contain quotes, backslashes or whitespace"
	}
	return ""
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1" || strings.HasPrefix(h, "127.")
}

// ResourceMetadataURL returns the URL set with WithResourceMetadata, or "".
func (s *Server) ResourceMetadataURL() string { return s.o.resourceMetadata }

// Validator returns the validator the Server was built with.
func (s *Server) Validator() Validator { return s.v }

// addResourceMetadata appends the resource_metadata parameter to ch when
// the Server has one.
func (s *Server) addResourceMetadata(ch *challenge.Challenge) {
	if s.o.resourceMetadata == "" {
		return
	}
	ch.Params = append(ch.Params, challenge.Param{Name: challenge.ParamResourceMetadata, Value: s.o.resourceMetadata})
}
