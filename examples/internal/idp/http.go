package idp

import (
	"errors"
	"net/http"
)

// Handler returns the IdP's HTTP API.
func (p *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.handleOIDC)
	mux.HandleFunc("GET /.well-known/ssf-configuration", p.handleSSF)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		writeJSON(w, http.StatusOK, p.jwks())
	})
	mux.HandleFunc("POST /token", p.handleToken)
	mux.HandleFunc("POST /admin/users/{name}/{action}", p.handleUserAction)
	mux.HandleFunc("POST /admin/clients/{id}/{action}", p.handleClientAction)
	mux.HandleFunc("POST /admin/rotate-keys", func(w http.ResponseWriter, _ *http.Request) {
		kid, err := p.RotateKeys()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
	})
	// Bound every request body, whatever the handler.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
		mux.ServeHTTP(w, r)
	})
}

func (p *IdP) handleOIDC(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.cfg.issuer,
		"jwks_uri":                              p.JWKSURL(),
		"token_endpoint":                        p.TokenURL(),
		"authorization_endpoint":                p.cfg.issuer + "/authorize",
		"grant_types_supported":                 []string{"password", "refresh_token", "client_credentials"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_parameter_supported":            true,
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
}

func (p *IdP) handleSSF(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"spec_version":               "1_0",
		"issuer":                     p.cfg.issuer,
		"jwks_uri":                   p.JWKSURL(),
		"delivery_methods_supported": []string{"urn:ietf:rfc:8935"},
		"authorization_schemes":      []map[string]string{{"spec_urn": "urn:ietf:rfc:6750"}},
	})
}

func (p *IdP) handleUserAction(w http.ResponseWriter, r *http.Request) {
	res, err := p.UserAction(r.Context(), r.PathValue("name"), r.PathValue("action"))
	writeAdmin(w, res, err)
}

func (p *IdP) handleClientAction(w http.ResponseWriter, r *http.Request) {
	res, err := p.ClientAction(r.Context(), r.PathValue("id"), r.PathValue("action"))
	writeAdmin(w, res, err)
}

func writeAdmin(w http.ResponseWriter, res *AdminResult, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrBadAction):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
