package testenv

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps cleanups and errors to itself.
type recorder struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }

func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func leakyWorker(stop chan struct{}) { <-stop }

// A goroutine still running at cleanup fails the check, with its stack;
// one that ended in time (here during a cleanup) does not.
func TestCheckGoroutines(t *testing.T) {
	defer func(d time.Duration) { leakWait = d }(leakWait)
	leakWait = 200 * time.Millisecond

	leak := &recorder{TB: t}
	CheckGoroutines(leak)
	stop := make(chan struct{})
	defer close(stop)
	go leakyWorker(stop)
	leak.runCleanups()
	if len(leak.errs) != 1 || !strings.Contains(leak.errs[0], "1 goroutines left running") || !strings.Contains(leak.errs[0], "leakyWorker") {
		t.Errorf("leaked goroutine: errors %q; want one naming leakyWorker", leak.errs)
	}

	clean := &recorder{TB: t}
	CheckGoroutines(clean)
	stop2 := make(chan struct{})
	done := make(chan struct{})
	go func() { leakyWorker(stop2); close(done) }()
	clean.Cleanup(func() { close(stop2); <-done })
	clean.runCleanups()
	if len(clean.errs) != 0 {
		t.Errorf("goroutine stopped by a cleanup: errors %q; want none", clean.errs)
	}
}
