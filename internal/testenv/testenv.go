// Package testenv decides what a test does when something it needs from
// outside Go is missing (tshark, OpenSSH, busybox, chromium, root): on a
// developer's machine it skips; in CI, where .ci/run installs everything
// and sets CAPTURECTL_REQUIRE_TOOLS=1, it fails, so that no check is
// silently skipped there. It also holds the goroutine-leak check every
// package's tests use (CheckGoroutines); it imports nothing of the module,
// so the lab's own tests and lab/internal can use it too.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// RequireEnv is the environment variable that turns skips into failures.
const RequireEnv = "CAPTURECTL_REQUIRE_TOOLS"

// Missing skips the test, or fails it when RequireEnv is set, saying what
// is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s (%s is set: CI must run this test)", msg, RequireEnv)
	}
	t.Skip(msg + " (CI provides it: .ci/run)")
}
