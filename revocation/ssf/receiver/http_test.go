package receiver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
)

func newServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }

func newRequest(method, url, ct, body string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", pushAuth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
