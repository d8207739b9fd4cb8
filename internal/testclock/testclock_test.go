package testclock_test

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testclock"
)

func TestDateAndUnixFollowAhead(t *testing.T) {
	want := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Add(-testclock.Ahead()) //datelint:ok the reference value
	if got := testclock.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Date = %v; want %v", got, want)
	}
	if got := testclock.Unix(want.Unix()+int64(testclock.Ahead()/time.Second), 0); !got.Equal(want) {
		t.Fatalf("Unix = %v; want %v", got, want)
	}
}

// TestAheadMovesDates runs this test binary again with the clock ten years
// ahead and checks that the fixed dates moved back by as much.
func TestAheadMovesDates(t *testing.T) {
	if os.Getenv(testclock.AheadEnv) != "" {
		if testclock.Ahead() != 87600*time.Hour {
			t.Fatalf("Ahead = %v", testclock.Ahead())
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^(TestAheadMovesDates|TestDateAndUnixFollowAhead)$")
	cmd.Env = append(os.Environ(), testclock.AheadEnv+"=87600h")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("with %s=87600h: %v\n%s", testclock.AheadEnv, err, out)
	}
}
