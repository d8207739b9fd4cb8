// Package token validates JWT access tokens locally: signature against keys
// from OIDC discovery, a JWKS URL or static keys; an algorithm allow-list that
// never admits "none"; iss, aud, exp, nbf and iat with leeway; a size bound;
// and a bounded cache of verified tokens so that repeat calls skip the
// signature check. Nothing on the validation path touches the network.
package token
