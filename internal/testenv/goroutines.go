package testenv

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// CheckGoroutines fails t when goroutines started after the call are still
// running once t's cleanups have run (it waits up to 5 seconds for them to
// end), and prints their stacks. Call it before starting what it checks:
// cleanups run in reverse order, so its check runs after every cleanup
// registered later. labtest.Start calls it for the lab it starts.
//
// It compares goroutine IDs, not counts, so a goroutine that ended does not
// hide one that leaked. Not for parallel tests: it cannot tell their
// goroutines from the test's own.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := map[string]bool{}
	for id := range goroutineStacks() {
		before[id] = true
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(leakWait)
		for {
			left := newGoroutines(before)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines left running after the test:\n\n%s", len(left), strings.Join(left, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// leakWait is how long the check waits for goroutines to end.
var leakWait = 5 * time.Second

// processGoroutines are frames of goroutines that are not the test's to
// stop: the testing package's own, and os/signal's loop, which runs for
// the life of the process once anything calls signal.Notify.
var processGoroutines = []string{"testing.tRunner(", "testing.(*T).Run(", "os/signal.loop("}

// newGoroutines lists the stacks of goroutines not in before.
func newGoroutines(before map[string]bool) []string {
	var out []string
	for id, st := range goroutineStacks() {
		if before[id] || containsAny(st, processGoroutines) {
			continue
		}
		out = append(out, st)
	}
	return out
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)

// goroutineStacks maps every goroutine's ID to its stack.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if m := goroutineHeader.FindStringSubmatch(g); m != nil {
			out[m[1]] = g
		}
	}
	return out
}
