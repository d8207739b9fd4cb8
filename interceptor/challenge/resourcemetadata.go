package challenge

import "strings"

// ParamResourceMetadata is the WWW-Authenticate auth-param that carries the
// URL of the resource's OAuth 2.0 Protected Resource Metadata document
// (RFC 9728 §5.1). Header writes it, like every Param, as a quoted-string
// with '"' and '\' escaped; Parse keeps it in Params.
const ParamResourceMetadata = "resource_metadata"

// ResourceMetadata returns the value of the challenge's resource_metadata
// parameter (RFC 9728 §5.1), or "" when it has none.
func (c *Challenge) ResourceMetadata() string {
	for _, p := range c.Params {
		if strings.EqualFold(p.Name, ParamResourceMetadata) { // auth-param names are case-insensitive (RFC 9110 §11.2)
			return p.Value
		}
	}
	return ""
}
