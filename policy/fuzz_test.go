package policy_test

import (
	"errors"
	"os"
	"testing"

	"github.com/caekit/caekit/policy"
)

// FuzzLoad feeds arbitrary bytes to the policy file loader. It must never
// panic; what it accepts must compile into an Engine; what it rejects must
// be explained by an error naming the file.
func FuzzLoad(f *testing.F) {
	for _, path := range []string{"testdata/policy.yaml", "testdata/policy.json"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		policyV1, policyV2, policyBroken, "", "{}", "[]", "null", "version: 1\n",
		"locations:\n  - &x\n    name: a\n  - *x\n",
		"a: &a [*a]\n",
		"locations:\n  - name: a\n    ranges: [\"::ffff:10.0.0.0/104\", \"fe80::/64\"]\n",
		"rules:\n  - methods: [\"/a.B/*\", \"*\"]\n    strict: true\n",
		"client_ip: {trusted_proxies: [10.0.0.0/8], header: x-ip, max_hops: 64}\n",
		"{\"rules\":[{\"methods\":[\"/x.Y/Z\"],\"auth_context\":[\"c25\"]}]}",
		"--- \n...\n---\n",
		"locations: !!map {}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse("fuzz.yaml", data)
		if err != nil {
			var fe *policy.FieldError
			if errors.As(err, &fe) && fe.File != "fuzz.yaml" {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if _, err := policy.NewEngine(p, policy.WithLogger(quiet)); err != nil {
			t.Fatalf("accepted policy does not compile: %v", err)
		}
	})
}
