package session

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

// pingAndWait pings n times and waits until the session has received the
// frames they make at the article's points (n, n, 2n, n).
func pingAndWait(t *testing.T, l *lab.Lab, received func() []int, n int) []int {
	t.Helper()
	if res, err := l.Net.Ping(context.Background(), "testvm1", "testvm2", n, 20*time.Millisecond); err != nil || res.Received != n {
		t.Fatalf("ping: %+v, %v", res, err)
	}
	want := []int{n, n, 2 * n, n}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := received()
		if slices.Equal(got, want) {
			return want
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %v; want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func framesOf(s *Session) func() []int {
	return func() []int {
		var out []int
		for _, p := range s.Stats() {
			out = append(out, int(p.Frames))
		}
		return out
	}
}

// Cancelling the context (Ctrl-C) stops every point, keeps every frame and
// leaves nothing on the host.
func TestStopOnCancel(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	dial := labDialer(t, l)
	var out lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, articlePlan(t, l), Options{Dial: dial, Output: &out, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := pingAndWait(t, l, framesOf(s), 3)
	cancel()
	r, err := s.Wait()
	if err != nil {
		t.Fatalf("cancelled capture: %v; want no error", err)
	}
	if r.Reason != "cancelled" {
		t.Errorf("reason %q; want cancelled", r.Reason)
	}
	_, pkts := readPcapng(t, out.Bytes())
	if c := countByPoint(pkts, 4); !slices.Equal(c, want) {
		t.Errorf("pcapng frames per point %v; want %v", c, want)
	}
	for _, p := range r.Points {
		if p.Dropped != 0 || p.Dumped != int(p.Frames) {
			t.Errorf("%s: summary dumped %d dropped %d, received %d", p.Name, p.Dumped, p.Dropped, p.Frames)
		}
	}
	waitNoCaptures(t, l, "esx02", 5*time.Second)
	if f := leaseFiles(t, l, dial, "esx02"); len(f) != 0 {
		t.Errorf("files left on the host: %v", f)
	}
}

// A connection cut mid-stream ends the capture with an error; the session
// dials again and stops the pktcap-uw processes, which the lab (like the
// real tool) keeps running after their channel closed. Every frame
// received before the cut is in the output.
func TestStopOnConnectionCut(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	dial := labDialer(t, l)
	var out lockedBuffer
	s, err := Start(context.Background(), articlePlan(t, l), Options{Dial: dial, Output: &out, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := pingAndWait(t, l, framesOf(s), 3)
	if n := len(pktcapProcs(t, l, "esx02")); n != 4 {
		t.Fatalf("%d pktcap-uw running before the cut; want 4", n)
	}
	if err := l.CutConnections("esx02"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Wait()
	if err == nil || !strings.Contains(err.Error(), "capture ended before the stop") {
		t.Fatalf("cut connection: %v; want an error saying a capture ended early", err)
	}
	t.Logf("error after the cut: %v", err)
	if r.Reason != "error" || len(r.Remaining) != 0 {
		t.Errorf("reason %q remaining %v; want error and nothing remaining", r.Reason, r.Remaining)
	}
	_, pkts := readPcapng(t, out.Bytes())
	if c := countByPoint(pkts, 4); !slices.Equal(c, want) {
		t.Errorf("pcapng frames per point %v; want %v", c, want)
	}
	waitNoCaptures(t, l, "esx02", 5*time.Second)
	if f := leaseFiles(t, l, dial, "esx02"); len(f) != 0 {
		t.Errorf("files left on the host: %v", f)
	}
}

// A host whose key changed is refused, naming the key offered; nothing is
// started.
func TestStartRefusesChangedHostKey(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	dial := labDialer(t, l) // known_hosts written with the old key
	if err := l.ChangeHostKey("esx02"); err != nil {
		t.Fatal(err)
	}
	h, _ := l.Host("esx02")
	_, err := Start(context.Background(), articlePlan(t, l), Options{Dial: dial})
	var hke *esxi.HostKeyError
	if !errors.As(err, &hke) || hke.Fingerprint != h.Fingerprint || !strings.Contains(err.Error(), h.Fingerprint) {
		t.Fatalf("Start with a changed host key: %v; want a HostKeyError naming %s", err, h.Fingerprint)
	}
	if n := len(pktcapProcs(t, l, "esx02")); n != 0 {
		t.Errorf("%d pktcap-uw started", n)
	}
}

// A point whose pktcap-uw fails to start (a port the host does not have)
// fails Start with pktcap-uw's message, and the points that did start are
// stopped.
func TestStartFailureStopsTheOthers(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	dial := labDialer(t, l)
	plan := articlePlan(t, l)
	plan.Points = append(plan.Points, UplinkRx("esx02", "vmnic7"))
	_, err := Start(context.Background(), plan, Options{Dial: dial, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "Failed to find the uplink vmnic7") {
		t.Fatalf("Start with a missing uplink: %v; want pktcap-uw's error", err)
	}
	waitNoCaptures(t, l, "esx02", 5*time.Second)
	if f := leaseFiles(t, l, dial, "esx02"); len(f) != 0 {
		t.Errorf("files left on the host: %v", f)
	}
}

const (
	// childEnv carries what the capture subprocess needs.
	childEnv = "CAPTURECTL_SESSION_TEST_CHILD"
	// standInEnv makes the test binary, run as pktcap-uw, a stand-in that
	// sleeps until a signal.
	standInEnv = "CAPTURECTL_PKTCAP_STANDIN"
)

type childConfig struct {
	Hosts      []lab.HostInfo
	KnownHosts string
	Output     string
	Plan       Plan
	DeadMan    time.Duration
}

// TestMain runs the capture subprocess of the signal tests, and the
// pktcap-uw shim of the OpenSSH test, when asked to.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "pktcap-uw" {
		if os.Getenv(standInEnv) != "" {
			time.Sleep(time.Hour) // until a signal ends it
			os.Exit(0)
		}
		os.Exit(shimMain())
	}
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(childMain(cfg))
	}
	os.Exit(m.Run())
}

// childMain is capturectl's capture in miniature: SIGINT and SIGTERM
// cancel the context, the capture writes a pcapng file.
func childMain(cfgJSON string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if os.Getenv("CAPTURECTL_CHILD_MEMPROFILE") != "" {
		runtime.MemProfileRate = 4096
	}
	if f := os.Getenv("CAPTURECTL_CHILD_CPUPROFILE"); f != "" {
		if pf, err := os.Create(f); err == nil {
			pprof.StartCPUProfile(pf)
			defer pprof.StopCPUProfile()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := os.Create(cfg.Output)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	dial := func(ctx context.Context, host string) (*esxi.SSHClient, error) {
		for _, h := range cfg.Hosts {
			if h.Name == host {
				return esxi.Dial(ctx, labSSHConfig(h, cfg.KnownHosts))
			}
		}
		return nil, fmt.Errorf("no host %s", host)
	}
	s, err := Start(ctx, cfg.Plan, Options{Dial: dial, Output: f, DeadMan: cfg.DeadMan})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("started", s.RunID())
	r, err := s.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ended", r.Reason)
	b, _ := json.Marshal(childResult(r))
	fmt.Println(string(b))
	if f := os.Getenv("CAPTURECTL_CHILD_MEMPROFILE"); f != "" {
		if pf, err := os.Create(f); err == nil {
			pprof.Lookup("allocs").WriteTo(pf, 0)
			pf.Close()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ = json.Marshal(childMem{Mallocs: ms.Mallocs, PeakKiB: ownPeakKiB()})
	fmt.Println("mem", string(b))
	return 0
}

// childMem is what the child reports of its own memory: the heap
// allocations it made, and its peak resident set (VmHWM of its own address
// space: wait4's ru_maxrss would be the parent's, see cmd/capturectl's
// TestPeakRSSMethod).
type childMem struct {
	Mallocs uint64
	PeakKiB int64 // -1 where /proc is not there
}

func ownPeakKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// childStats is what the child reports of each point.
type childStats struct {
	Name            string
	Frames          uint64
	Dumped, Dropped int
	Start, Stop     time.Time
}

func childResult(r *Result) []childStats {
	var out []childStats
	for _, p := range r.Points {
		out = append(out, childStats{p.Name, p.Frames, p.Dumped, p.Dropped, p.Start, p.Stop})
	}
	return out
}

// startChild runs a capture in a subprocess and returns once all points
// stream.
func startChild(t testing.TB, l *lab.Lab, deadMan time.Duration) (*exec.Cmd, string, *bufio.Scanner) {
	t.Helper()
	return startChildPlan(t, l, articlePlan(t, l), deadMan)
}

func startChildPlan(t testing.TB, l *lab.Lab, plan Plan, deadMan time.Duration) (*exec.Cmd, string, *bufio.Scanner) {
	t.Helper()
	cfg := childConfig{Hosts: l.Hosts(), KnownHosts: labtest.KnownHostsFile(t, l), Output: filepath.Join(t.TempDir(), "out.pcapng"),
		Plan: plan, DeadMan: deadMan}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = tWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "started ") {
		t.Fatalf("child did not start: %q", sc.Text())
	}
	return cmd, cfg.Output, sc
}

// waitFile waits until the pcapng file holds want frames per point.
func waitFile(t *testing.T, file string, want []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		_, pkts := readPcapng(t, b)
		got := countByPoint(pkts, 4)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("file has %v frames per point; want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGINT (Ctrl-C) and SIGTERM to capturectl: it stops every point, the
// file is complete and valid, nothing is left on the host.
func TestSignalsStopCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
			cmd, file, sc := startChild(t, l, 0)
			if res, err := l.Net.Ping(context.Background(), "testvm1", "testvm2", 3, 20*time.Millisecond); err != nil || res.Received != 3 {
				t.Fatalf("ping: %+v %v", res, err)
			}
			want := []int{3, 3, 6, 3}
			waitFile(t, file, want)
			cmd.Process.Signal(sig)
			if !sc.Scan() || sc.Text() != "ended cancelled" {
				t.Errorf("child said %q; want ended cancelled", sc.Text())
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("child: %v", err)
			}
			b, _ := os.ReadFile(file)
			names, pkts := readPcapng(t, b)
			if c := countByPoint(pkts, 4); !slices.Equal(c, want) || len(names) != 4 {
				t.Errorf("file: interfaces %q, frames per point %v; want 4 and %v", names, c, want)
			}
			waitNoCaptures(t, l, "esx02", 5*time.Second)
		})
	}
}

// capturectl killed with SIGKILL: the captures keep running on the host
// (the lab's pktcap-uw, like the real one, does not notice its channel
// closed while no frame comes); Cleanup leaves a live run's captures alone
// unless told All; the file written so far is valid and holds every frame
// received.
func TestSIGKILLThenCleanup(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	dial := labDialer(t, l)
	cmd, file, _ := startChild(t, l, time.Minute)
	if res, err := l.Net.Ping(context.Background(), "testvm1", "testvm2", 3, 20*time.Millisecond); err != nil || res.Received != 3 {
		t.Fatalf("ping: %+v %v", res, err)
	}
	want := []int{3, 3, 6, 3}
	waitFile(t, file, want)
	cmd.Process.Kill()
	cmd.Wait()
	b, _ := os.ReadFile(file)
	if _, pkts := readPcapng(t, b); !slices.Equal(countByPoint(pkts, 4), want) {
		t.Errorf("file after SIGKILL: %v frames per point; want %v", countByPoint(pkts, 4), want)
	}
	time.Sleep(200 * time.Millisecond)
	left := pktcapProcs(t, l, "esx02")
	if len(left) != 4 {
		t.Fatalf("%d pktcap-uw after SIGKILL; want the 4 orphans (else this test shows nothing)", len(left))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dial(ctx, "esx02")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := Cleanup(ctx, c, CleanupOptions{Logger: testLogger(t)})
	if err != nil || len(rep.Live) != 4 || len(rep.Stopped) != 0 {
		t.Fatalf("cleanup of a live run: %+v, %v; want 4 live leases left alone", rep, err)
	}
	if n := len(pktcapProcs(t, l, "esx02")); n != 4 {
		t.Fatalf("cleanup without All stopped captures of a live run: %d left", n)
	}
	rep, err = Cleanup(ctx, c, CleanupOptions{All: true, Logger: testLogger(t)})
	if err != nil || len(rep.Stopped) != 4 || len(rep.StillRunning) != 0 {
		t.Fatalf("cleanup --all: %+v, %v; want 4 stopped", rep, err)
	}
	var pids []int
	for _, p := range left {
		pids = append(pids, p.PID)
	}
	for _, lse := range rep.Stopped {
		if !slices.Contains(pids, lse.PID) || !strings.HasPrefix(lse.Cmd, "pktcap-uw ") {
			t.Errorf("stopped lease %+v is not one of the orphans %v", lse, pids)
		}
	}
	waitNoCaptures(t, l, "esx02", 5*time.Second)
	if f := leaseFiles(t, l, dial, "esx02"); len(f) != 0 {
		t.Errorf("files left on the host: %v", f)
	}
}

// capturectl killed with SIGKILL: the dead-man deadline stops every
// capture on the host by itself, and the watchdogs remove their leases.
func TestSIGKILLDeadMan(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	dial := labDialer(t, l)
	cmd, _, _ := startChild(t, l, 6*time.Second)
	killed := time.Now()
	cmd.Process.Kill()
	cmd.Wait()
	time.Sleep(200 * time.Millisecond)
	if n := len(pktcapProcs(t, l, "esx02")); n != 4 {
		t.Fatalf("%d pktcap-uw after SIGKILL; want the 4 orphans", n)
	}
	// Deadline at most 6 s after the last renewal, checked every 2 s, then
	// SIGINT; ps and date take their time too.
	waitNoCaptures(t, l, "esx02", 15*time.Second)
	t.Logf("the dead-man stopped every capture %v after capturectl was killed", time.Since(killed).Round(100*time.Millisecond))
	// The watchdog of the run's last capture removes the deadline after
	// its lease: nothing of the run is left.
	deadline := time.Now().Add(5 * time.Second)
	for f := leaseFiles(t, l, dial, "esx02"); len(f) != 0; f = leaseFiles(t, l, dial, "esx02") {
		if time.Now().After(deadline) {
			t.Fatalf("files left on the host 5 s after the dead-man stopped the captures: %v", f)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
