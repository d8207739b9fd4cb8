package idp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/caekit/caekit/examples/internal/idp"
)

// Start the development IdP on a free port and fetch a CAE token for alice.
func Example() {
	p, err := idp.Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer p.Close()

	resp, err := http.PostForm(p.TokenURL(), url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {idp.Password},
		"claims": {`{"access_token":{"xms_cc":{"values":["cp1"]}}}`},
	})
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var tr idp.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		panic(err)
	}
	fmt.Println(tr.TokenType, tr.ExpiresIn, tr.RefreshIn)
	// Output: Bearer 86400 43200
}
