//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
)

// Every way a run stops, against the lab, with a filter that matches
// nothing (a pktcap-uw left running would never end by itself): the exit
// code the README documents, the output valid up to the stop, and the
// host's ps and /tmp clean within 5 s.
//
// nothing is a filter no lab frame matches.
var nothing = []string{"--srcip", "10.255.255.1"}

// buildCapturectl is the command for tests that signal it: this test
// binary, which runs capturectl's main when started with beMain set (see
// extcap_test.go), so that no separate build is needed.
func buildCapturectl(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// proc is a running capturectl.
type proc struct {
	cmd    *exec.Cmd
	stderr syncBuf
	done   chan struct{}
	err    error
}

// startBin starts bin with args (the lab's environment is the test's,
// labEnv); stdout goes to stdout (nil: discarded).
func startBin(t *testing.T, bin string, stdout io.Writer, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), beMain+"=1")
	p.cmd.Stdout = stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFor polls cond until it holds, failing after within.
func waitFor(t *testing.T, p *proc, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if p != nil {
			select {
			case <-p.done:
				if cond() {
					return
				}
				t.Fatalf("capturectl exited (%v) before %s; stderr:\n%s", p.err, what, p.stderr.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v; stderr:\n%s", what, within, stderrOf(p))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stderrOf(p *proc) string {
	if p == nil {
		return ""
	}
	return p.stderr.String()
}

// ready waits for capture's line saying that every point streams.
func (p *proc) ready(t *testing.T) {
	t.Helper()
	waitFor(t, p, 30*time.Second, "ready line", func() bool { return strings.Contains(p.stderr.String(), "points stream; Ctrl-C stops") })
}

// exit waits for capturectl to end and returns its exit code (-1: killed
// by a signal).
func (p *proc) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("capturectl still runs %v after the stop; stderr:\n%s", within, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// hostClean waits until no pktcap-uw or capturectl watchdog runs on host
// and no capturectl file is left in its /tmp, failing after within.
func hostClean(t *testing.T, l *lab.Lab, kh, host string, within time.Duration) {
	t.Helper()
	h, err := l.Host(host)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within+10*time.Second)
	defer cancel()
	c, err := esxi.Dial(ctx, esxi.SSHConfig{Host: host, Addr: h.Addr, User: h.User, Password: h.Password,
		KnownHostsFile: kh, KeyFiles: []string{}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leftover := func() []string {
		var left []string
		procs, err := l.Processes(host)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			if cmd := strings.Join(p.Cmdline, " "); strings.Contains(cmd, "pktcap-uw") || strings.Contains(cmd, "capturectl") {
				left = append(left, fmt.Sprintf("pid %d %s", p.PID, cmd))
			}
		}
		out, _, err := c.Run(ctx, `for f in /tmp/capturectl-*; do [ -e "$f" ] && echo "$f"; done; true`)
		if err != nil {
			t.Fatal(err)
		}
		return append(left, strings.Fields(string(out))...)
	}
	deadline := time.Now().Add(within)
	for {
		left := leftover()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s not clean %v after the stop; left: %s", host, within, strings.Join(left, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// validPcapng reads a pcapng to its end: every block whole, the points'
// interfaces named; it returns the packets.
func validPcapng(t *testing.T, data []byte, ifaces int) int {
	t.Helper()
	r, err := pktcap.NewCaptureReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("pcapng: %v", err)
	}
	n := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("pcapng: packet %d: %v; want a file valid to its end", n+1, err)
		}
		n++
	}
	if got := len(r.Interfaces()); got != ifaces {
		t.Errorf("pcapng has %d interfaces; want %d", got, ifaces)
	}
	return n
}

func TestStops(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-article.yaml", false)
	bin := buildCapturectl(t)
	capture := func(extra ...string) []string {
		return append(append([]string{"capture", "--vm", "testvm2", "--known-hosts", kh}, nothing...), extra...)
	}

	// Ctrl-C keeps today's code (0 for capture); the file is in place.
	t.Run("SIGINT", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "c.pcapng")
		p := startBin(t, bin, nil, capture("-o", file)...)
		p.ready(t)
		p.cmd.Process.Signal(syscall.SIGINT)
		stopped := time.Now()
		if code := p.exit(t, 15*time.Second); code != 0 {
			t.Errorf("exit %d after Ctrl-C; want 0\n%s", code, p.stderr.String())
		}
		hostClean(t, l, kh, "esx02", 5*time.Second-time.Since(stopped))
		data, _ := os.ReadFile(file)
		validPcapng(t, data, 4)
	})

	// SIGHUP (the terminal closed): stopped as on Ctrl-C, exit 129, the
	// pcapng and the per-point pcaps kept and valid up to the stop.
	t.Run("SIGHUP capture", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "c.pcapng")
		p := startBin(t, bin, nil, capture("-o", file, "--per-point", filepath.Join(dir, "pp"))...)
		p.ready(t)
		p.cmd.Process.Signal(syscall.SIGHUP)
		stopped := time.Now()
		if code := p.exit(t, 15*time.Second); code != 129 {
			t.Errorf("exit %d after SIGHUP; want 129\n%s", code, p.stderr.String())
		}
		hostClean(t, l, kh, "esx02", 5*time.Second-time.Since(stopped))
		if !strings.Contains(p.stderr.String(), "stopped by SIGHUP") {
			t.Errorf("stderr does not say SIGHUP stopped the run:\n%s", p.stderr.String())
		}
		data, _ := os.ReadFile(file)
		validPcapng(t, data, 4)
		pcaps, _ := filepath.Glob(filepath.Join(dir, "pp", "*.pcap"))
		if len(pcaps) != 4 {
			t.Errorf("per-point files %v; want 4", pcaps)
		}
	})

	// SIGHUP during a trace: exit 129, and --out holds the pcapng, the
	// JSON and the HTML of what was captured.
	t.Run("SIGHUP trace", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		args := append([]string{"trace", "--vm", "testvm2", "--known-hosts", kh, "--duration", "1m", "--out", out}, nothing...)
		p := startBin(t, bin, nil, args...)
		// the directory is renamed into place once every point streams
		waitFor(t, p, 30*time.Second, "--out directory", func() bool { _, err := os.Stat(out); return err == nil })
		p.cmd.Process.Signal(syscall.SIGHUP)
		stopped := time.Now()
		if code := p.exit(t, 15*time.Second); code != 129 {
			t.Errorf("exit %d after SIGHUP; want 129\n%s", code, p.stderr.String())
		}
		hostClean(t, l, kh, "esx02", 5*time.Second-time.Since(stopped))
		for _, f := range runFiles {
			if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
				t.Errorf("--out %s: %v", f, err)
			}
		}
		data, _ := os.ReadFile(filepath.Join(out, "trace.pcapng"))
		validPcapng(t, data, 4)
	})

	// The reader of -o - or -o FIFO goes away while nothing is written
	// (the filter matches nothing): noticed at once, exit 141.
	readerGone := func(t *testing.T, stdout io.Writer, args []string, open func() io.ReadCloser) {
		p := startBin(t, bin, stdout, args...)
		r := open()
		hdr := make([]byte, 28) // the section header block
		if _, err := io.ReadFull(r, hdr); err != nil {
			t.Fatalf("pcapng header: %v\n%s", err, p.stderr.String())
		}
		p.ready(t)
		r.Close()
		stopped := time.Now()
		if code := p.exit(t, 15*time.Second); code != 141 {
			t.Errorf("exit %d after the reader went away; want 141\n%s", code, p.stderr.String())
		}
		hostClean(t, l, kh, "esx02", 5*time.Second-time.Since(stopped))
		if !strings.Contains(p.stderr.String(), "reader went away") {
			t.Errorf("stderr does not say the reader went away:\n%s", p.stderr.String())
		}
	}
	t.Run("stdout reader gone", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		readerGone(t, w, capture("-o", "-"), func() io.ReadCloser { w.Close(); return r })
	})
	t.Run("FIFO reader gone", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		readerGone(t, nil, capture("-o", fifo), func() io.ReadCloser {
			f, err := os.Open(fifo) // waits for capturectl to open it
			if err != nil {
				t.Fatal(err)
			}
			return f
		})
	})
}

// A run that fails before every point streams (here: the host's key
// changed, so SSH refuses it) destroys nothing: an earlier -o file, the
// --per-point files and an earlier run's --out directory stay as they
// were, with no temporary file beside them; --out onto an earlier run
// without --force is refused before anything connects.
func TestFailedRunKeepsOutput(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-article.yaml", false)
	dir := t.TempDir()
	file, pp, out := filepath.Join(dir, "c.pcapng"), filepath.Join(dir, "pp"), filepath.Join(dir, "run")
	if err := os.MkdirAll(pp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	earlier := map[string]string{file: "an earlier capture"}
	for _, f := range runFiles {
		earlier[filepath.Join(out, f)] = "an earlier run's " + f
	}
	earlier[filepath.Join(pp, "esx02-vmnic2-rx.pcap")] = "an earlier point file"
	for f, content := range earlier {
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// refused before connecting: an earlier run's directory, no --force
	_, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "testvm2", "--known-hosts", kh, "--duration", "1s", "--out", out)
	if exitCode(err) != exitUsage || !strings.Contains(stderr+err.Error(), "--force") {
		t.Errorf("--out onto an earlier run: exit %d (%v); want %d naming --force", exitCode(err), err, exitUsage)
	}
	if err := l.ChangeHostKey("esx02"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"capture", "--vm", "testvm2", "--known-hosts", kh, "--duration", "1s", "-o", file, "--per-point", pp},
		{"trace", "--vm", "testvm2", "--known-hosts", kh, "--duration", "1s", "--out", out, "--force"},
	} {
		if _, _, err := runCmd(t, context.Background(), args...); err == nil {
			t.Fatalf("%s with a changed host key succeeded", args[0])
		}
	}
	for f, content := range earlier {
		if b, err := os.ReadFile(f); err != nil || string(b) != content {
			t.Errorf("%s after the failed runs: %q, %v; want it unchanged", f, b, err)
		}
	}
	for _, d := range []string{dir, pp, out} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("a temporary file is left: %s", filepath.Join(d, e.Name()))
			}
		}
	}
}
