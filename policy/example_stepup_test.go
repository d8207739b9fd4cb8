package policy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/policy"
)

// An RFC 9470 rule from a policy file: ExportAll needs a multi-factor
// acr and an authentication at most five minutes old.
func ExampleEngine_StepUpCheck() {
	p, err := policy.Parse("policy.yaml", []byte(`
version: 1
rules:
  - methods: ["/inbox.v1.InboxService/ExportAll"]
    acr_values: [urn:example:mfa]
    max_age: 5m
`))
	if err != nil {
		panic(err)
	}
	eng, err := policy.NewEngine(p, policy.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	now := time.Now()
	stale := &token.Claims{Subject: "alice", ACR: "urn:example:mfa", AuthTime: now.Add(-time.Hour)}
	d := eng.StepUpCheck().Check(context.Background(), &check.Request{FullMethod: "/inbox.v1.InboxService/ExportAll", Claims: stale, Now: now})
	fmt.Println(d.ACRValues, d.MaxAge)
	fresh := &token.Claims{Subject: "alice", ACR: "urn:example:mfa", AuthTime: now.Add(-time.Minute)}
	fmt.Println(eng.StepUpCheck().Check(context.Background(), &check.Request{FullMethod: "/inbox.v1.InboxService/ExportAll", Claims: fresh, Now: now}) == nil)
	// Output:
	// [urn:example:mfa] 5m0s
	// true
}
