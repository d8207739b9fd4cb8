package demo_test

import (
	"context"
	"fmt"
	"os"

	"github.com/caekit/caekit/examples/internal/demo"
)

// Run the first two steps and print the narration (ports vary, so there is
// no fixed output).
func Example() {
	rep, err := demo.Run(context.Background(), demo.Options{Out: os.Stdout, Only: []int{1, 2}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ok:", rep.OK())
}
