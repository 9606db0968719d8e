package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The first Ctrl-C stops a command cleanly (exit 0 for lab serve); a second
// one abandons at once, as the message says.
func TestInterrupts(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "capturectl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	start := func() (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(bin, "lab", "serve", "--state", t.TempDir())
		out, _ := cmd.StdoutPipe()
		errp, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "lab ready") {
				break
			}
		}
		go func() {
			for sc.Scan() {
			}
		}()
		return cmd, bufio.NewScanner(errp)
	}
	cmd, stderr := start()
	cmd.Process.Signal(syscall.SIGINT)
	var msg strings.Builder
	for stderr.Scan() {
		msg.WriteString(stderr.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after one Ctrl-C: %v; want a clean exit", err)
	}
	if !strings.Contains(msg.String(), "press Ctrl-C again to abandon") {
		t.Errorf("stderr %q", msg.String())
	}

	// A second Ctrl-C while a command is still cleaning up abandons at once:
	// run interruptContext in a helper process whose clean-up takes long.
	helper := exec.Command(os.Args[0], "-test.run", "^TestInterruptHelper$")
	helper.Env = append(os.Environ(), "CAPTURECTL_SIGNAL_HELPER=1")
	hout, _ := helper.StdoutPipe()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	hsc := bufio.NewScanner(hout)
	for hsc.Scan() && hsc.Text() != "ready" {
	}
	helper.Process.Signal(syscall.SIGINT)
	for hsc.Scan() && hsc.Text() != "cleaning up" {
	}
	helper.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		for hsc.Scan() {
		}
		done <- helper.Wait()
	}()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
			t.Errorf("after two Ctrl-C: %v; want killed by SIGINT", err)
		}
	case <-time.After(10 * time.Second):
		helper.Process.Kill()
		t.Fatal("a second Ctrl-C did not end the process")
	}
}

// TestInterruptHelper is the helper process of TestInterrupts (it does
// nothing unless started by it).
func TestInterruptHelper(t *testing.T) {
	if os.Getenv("CAPTURECTL_SIGNAL_HELPER") != "1" {
		return
	}
	ctx, stop := interruptContext(io.Discard)
	defer stop()
	fmt.Println("ready")
	<-ctx.Done()
	fmt.Println("cleaning up")
	time.Sleep(20 * time.Second) // a slow clean-up; the second Ctrl-C ends it
	fmt.Println("finished")
}
