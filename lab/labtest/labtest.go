// Package labtest starts the emulated lab for a test and points capturectl
// at it: the lab on 127.0.0.1 (free ports unless the topology fixes an SSH
// port), closed by t.Cleanup with a goroutine-leak check after it, its logs
// in t.Log, and the environment and known_hosts file a user of `capturectl
// lab serve` would have.
//
// It is for tests only (cmd/capturectl's TestImportRules lets nothing else
// import it). The lab's own in-package tests cannot import it (labtest
// imports lab); they and lab/internal use testenv.CheckGoroutines directly.
package labtest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/lab"
)

// Start starts the lab of a topology file (a path relative to the test's
// package directory, e.g. "../configs/lab-article.yaml") with opts
// (lab.Start), failing t when it cannot. When opts.Logger is nil the lab
// logs to t.Log. At cleanup the lab is closed (a Close error fails t) and
// then testenv.CheckGoroutines checks that every goroutine started since
// Start has ended. Cleanups registered before Start run after that check;
// call testenv.CheckGoroutines first when goroutines started earlier in
// the test must be checked too.
func Start(t testing.TB, topology string, opts lab.Options) *lab.Lab {
	t.Helper()
	cfg := config(t, topology)
	testenv.CheckGoroutines(t)
	if opts.Logger == nil {
		opts.Logger = logger(t)
	}
	l, err := lab.Start(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return l
}

// Network builds the network model of a topology file alone (no SSH
// servers, no vCenter, no background traffic), closed at cleanup with the
// same leak check as Start.
func Network(t testing.TB, topology string) *lab.Network {
	t.Helper()
	cfg := config(t, topology)
	testenv.CheckGoroutines(t)
	n, err := lab.NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func config(t testing.TB, path string) *lab.Config {
	t.Helper()
	cfg, err := lab.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// KnownHostsFile writes l's known_hosts (lab.Lab.KnownHosts) to a file in
// t.TempDir() and returns its path, for --known-hosts.
func KnownHostsFile(t testing.TB, l *lab.Lab) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f, l.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Env is the environment a test runs capturectl with against l: l.Env()
// (what `lab serve` tells a user to export), and nothing of the machine
// running the test: GOVC_INSECURE, GOVC_TLS_KNOWN_HOSTS and SSH_AUTH_SOCK
// empty, HOME a new empty directory (no ~/.ssh keys or known_hosts).
func Env(t testing.TB, l *lab.Lab) map[string]string {
	t.Helper()
	env := l.Env()
	for _, k := range []string{"GOVC_INSECURE", "GOVC_TLS_KNOWN_HOSTS", "SSH_AUTH_SOCK"} {
		env[k] = ""
	}
	env["HOME"] = t.TempDir()
	return env
}

// Setenv sets Env(t, l) in the process environment for the rest of t
// (t.Setenv, so not in parallel tests) and returns KnownHostsFile(t, l).
func Setenv(t testing.TB, l *lab.Lab) (knownHosts string) {
	t.Helper()
	for k, v := range Env(t, l) {
		t.Setenv(k, v)
	}
	return KnownHostsFile(t, l)
}

// logger is a debug-level logger writing to t.Log. What is logged once the
// lab's cleanup has run (by a goroutine that outlived it, which the leak
// check then reports) is dropped, so that a late line cannot panic in
// t.Log after the test has ended.
func logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
