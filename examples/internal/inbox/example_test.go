package inbox_test

import (
	"context"
	"fmt"

	"github.com/caekit/caekit/examples/internal/inbox"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// The service names the caller its SubjectFunc reports (caekit's claims, in
// the example server).
func Example() {
	s := inbox.New(func(context.Context) string { return "alice" })
	r, _ := s.GetMessage(context.Background(), &inboxv1.GetMessageRequest{Id: "42"})
	fmt.Println(r.GetBody())
	// Output: message 42 for alice
}
