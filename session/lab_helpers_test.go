package session

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
)

// testLogger routes logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// labSSHConfig is how capturectl reaches a lab host: an address override,
// keyboard-interactive with the password, the host key from known_hosts;
// no agent or key files of the machine running the test.
func labSSHConfig(h lab.HostInfo, knownHostsFile string) esxi.SSHConfig {
	return esxi.SSHConfig{Host: h.Name, Addr: h.Addr, User: h.User, Password: h.Password,
		KnownHostsFile: knownHostsFile, KeyFiles: []string{}, NoAgent: true, Timeout: 10 * time.Second}
}

func labDialer(t *testing.T, l *lab.Lab) Dialer {
	kh := labtest.KnownHostsFile(t, l)
	log := testLogger(t)
	return func(ctx context.Context, host string) (*esxi.SSHClient, error) {
		h, err := l.Host(host)
		if err != nil {
			return nil, err
		}
		cfg := labSSHConfig(h, kh)
		cfg.Logger = log
		return esxi.Dial(ctx, cfg)
	}
}

// articlePlan is the default capture of testvm2's port on esx02: both
// uplinks' receive side, PortOutput and VnicRx, ICMP only.
func articlePlan(t testing.TB, l *lab.Lab) Plan {
	t.Helper()
	host, port, err := l.Net.FindPort("testvm2", 0)
	if err != nil {
		t.Fatal(err)
	}
	return Plan{
		Points: DefaultPoints(host, port.PortID, []string{"vmnic2", "vmnic3"}),
		Filter: pktcap.Filter{Proto: pktcap.Some[uint8](1)},
	}
}

// pktcapProcs lists a host's pktcap-uw processes.
func pktcapProcs(t testing.TB, l *lab.Lab, host string) []lab.Process {
	t.Helper()
	ps, err := l.Processes(host)
	if err != nil {
		t.Fatal(err)
	}
	var out []lab.Process
	for _, p := range ps {
		if len(p.Cmdline) > 0 && p.Cmdline[0] == "pktcap-uw" {
			out = append(out, p)
		}
	}
	return out
}

// waitNoCaptures waits until no pktcap-uw runs on host and no capturectl
// helper (watchdog) either, failing after within.
func waitNoCaptures(t testing.TB, l *lab.Lab, host string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		procs, err := l.Processes(host)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, p := range procs {
			cmd := strings.Join(p.Cmdline, " ")
			if strings.Contains(cmd, "pktcap-uw") || strings.Contains(cmd, "capturectl") {
				left = append(left, fmt.Sprintf("%d %s", p.PID, cmd))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s: processes left %v after the capture:\n%s", host, within, strings.Join(left, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaseFiles returns the capturectl files under /tmp on a lab host.
func leaseFiles(t *testing.T, l *lab.Lab, dial Dialer, host string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _, err := c.Run(ctx, "for f in /tmp/capturectl-*; do [ -e \"$f\" ] && echo \"$f\"; done; true")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// lockedBuffer is a goroutine-safe bytes.Buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// readPcapng reads a pcapng and returns the interface names and the
// packets.
func readPcapng(t *testing.T, data []byte) ([]string, []pktcap.Packet) {
	t.Helper()
	r, err := pktcap.NewCaptureReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("pcapng: %v", err)
	}
	var pkts []pktcap.Packet
	for {
		p, err := r.Next()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("pcapng after %d packets: %v", len(pkts), err)
			}
			break
		}
		pkts = append(pkts, p)
	}
	var names []string
	for _, i := range r.Interfaces() {
		names = append(names, i.Name)
	}
	return names, pkts
}

// countByPoint counts packets per interface index.
func countByPoint(pkts []pktcap.Packet, n int) []int {
	c := make([]int, n)
	for _, p := range pkts {
		if p.Interface < n {
			c[p.Interface]++
		}
	}
	return c
}
