package session

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
)

// busyboxSandbox makes a directory of Debian's busybox applets plus a
// stand-in pktcap-uw (this test binary, TestMain, so that its command line
// is "pktcap-uw ARGS" as the real one's is) and returns it, a run ID whose
// files in /tmp are removed at the end, and a runner of scripts in its sh
// with only that directory on PATH.
func busyboxSandbox(t *testing.T) (bin, run string, sh func(script string) *exec.Cmd) {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox not installed")
	}
	bin = t.TempDir()
	for _, applet := range []string{"sh", "ps", "kill", "sleep", "date", "cat", "grep", "rm", "echo", "mv"} {
		if err := os.Symlink(busybox, filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "pktcap-uw"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	run = "t" + strconv.Itoa(os.Getpid()) + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ""))
	if len(run) > 32 {
		run = run[:32]
	}
	run = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return 'x'
	}, run)
	t.Cleanup(func() {
		files, _ := filepath.Glob("/tmp/capturectl-" + run + "*")
		for _, f := range files {
			os.Remove(f)
		}
	})
	sh = func(script string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, "sh"), "-c", script)
		c.Env = []string{"PATH=" + bin, standInEnv + "=1"}
		return c
	}
	return bin, run, sh
}

// waitFor polls cond every 20 ms until it holds, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The watchdog in busybox ash: ps shows one line naming pktcap-uw per
// capture (the watchdog's own command line names neither pktcap-uw nor the
// capture's command); an empty or half-written deadline file is not taken
// as expired; a deadline that has passed stops the capture, and the run's
// last watchdog removes the lease and then the deadline.
//
// sleep is a wrapper that counts the watchdog's rounds in a file, so the
// test waits for rounds that read the deadline after it changed instead of
// guessing how long that takes.
func TestWatchdogInBusybox(t *testing.T) {
	bin, run, sh := busyboxSandbox(t)
	rounds := filepath.Join(t.TempDir(), "rounds")
	os.Remove(filepath.Join(bin, "sleep"))
	busybox, _ := exec.LookPath("busybox")
	wrapper := fmt.Sprintf("#!%s\necho >>%s\nexec %s sleep 0.05\n", filepath.Join(bin, "sh"), rounds, busybox)
	if err := os.WriteFile(filepath.Join(bin, "sleep"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	countRounds := func() int {
		b, _ := os.ReadFile(rounds)
		return strings.Count(string(b), "\n")
	}
	out, err := sh(setDeadlineScript(run, 3600)).Output()
	if err != nil {
		t.Fatalf("deadline: %v", err)
	}
	start, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("deadline script printed %q", out)
	}
	if b, _ := os.ReadFile(deadlineFile(run)); strings.TrimSpace(string(b)) != strconv.FormatInt(start+3600, 10) {
		t.Fatalf("deadline file holds %q; want %d", b, start+3600)
	}
	if tmp, _ := filepath.Glob(deadlineFile(run) + ".*"); len(tmp) != 0 {
		t.Fatalf("temporary deadline files left: %v", tmp)
	}
	cmdline := "pktcap-uw --uplink vmnic3 -s 0 -o -"
	// The run started 100 s ago (so that a deadline in the past is still
	// one the run could have: no earlier than its start).
	start -= 100
	c := sh(startScript(run, 0, "h/vmnic3/rx", start, 3700, cmdline))
	stderr, _ := c.StderrPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() { c.Process.Kill(); <-done })
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || line != pidTag+strconv.Itoa(c.Process.Pid)+"\n" {
		t.Fatalf("PID line %q, %v", line, err)
	}
	// The watchdog is running once it has slept.
	waitFor(t, 10*time.Second, "the watchdog never slept", func() bool { return countRounds() > 0 })
	ps, err := sh("ps").Output()
	if err != nil {
		t.Fatal(err)
	}
	// This run's lines only: the capture's (its PID) and its watchdog's
	// (which names the capture's PID); other tests on the machine may
	// have captures of their own.
	pid := strconv.Itoa(c.Process.Pid)
	var named []string
	watchdog := false
	for _, l := range strings.Split(string(ps), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || (f[0] != pid && !slices.Contains(f[1:], pid)) {
			continue
		}
		if strings.Contains(l, "pktcap-uw") {
			named = append(named, l)
		}
		watchdog = watchdog || strings.Contains(l, watchdogName)
	}
	if len(named) != 1 || !strings.HasSuffix(named[0], cmdline) || !watchdog {
		t.Fatalf("ps lines naming pktcap-uw: %q (watchdog listed: %v); want only the capture's, and a %s line\n%s", named, watchdog, watchdogName, ps)
	}

	alive := func() bool {
		select {
		case err := <-done:
			done <- err
			return false
		default:
			return true
		}
	}
	for _, content := range []string{"", "17", "\n", "17333x"} {
		if err := os.WriteFile(deadlineFile(run), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		n := countRounds()
		waitFor(t, 10*time.Second, "the watchdog stopped going round", func() bool { return countRounds() >= n+2 || !alive() })
		if !alive() {
			t.Fatalf("deadline file holding %q: the watchdog stopped the capture (an empty or partial deadline taken as expired)", content)
		}
	}
	// A deadline that has passed, written as capturectl writes it.
	if err := sh(setDeadlineScript(run, -10)).Run(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGINT {
			t.Errorf("stand-in ended with %v; want SIGINT", c.ProcessState)
		}
		done <- nil
	case <-time.After(15 * time.Second):
		t.Fatal("the watchdog did not stop the capture past its deadline")
	}
	waitFor(t, 10*time.Second, "the watchdog left the lease or the deadline", func() bool {
		files, _ := filepath.Glob("/tmp/capturectl-" + run + "*")
		return len(files) == 0
	})
}

// A deadline that cannot be written (here: its directory is missing, as a
// full /tmp fails the write) fails the command, says so, and leaves no
// temporary file; the deadline is never half-written.
func TestSetDeadlineFailure(t *testing.T) {
	_, run, sh := busyboxSandbox(t)
	script := strings.ReplaceAll(setDeadlineScript(run, 60), "/tmp/", "/nonexistent-capturectl/")
	out, err := sh(script).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot write") {
		t.Fatalf("deadline into a missing directory: %v, %q; want a failure that says so", err, out)
	}
	if files, _ := filepath.Glob("/tmp/capturectl-" + run + "*"); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}
