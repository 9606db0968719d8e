package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
)

// labEnv starts a lab topology with its vCenter and points capturectl at
// it the way `lab serve` tells a user to (labtest.Setenv); it returns the
// known_hosts file for --known-hosts.
func labEnv(t testing.TB, topology string, traffic bool) (*lab.Lab, string) {
	t.Helper()
	l := labtest.Start(t, topology, lab.Options{VCenter: true, NoTraffic: !traffic})
	if _, ok := l.Env()[envSSHAddrs]; !ok {
		t.Fatalf("lab.Env() has no %s: %v", envSSHAddrs, l.Env())
	}
	return l, labtest.Setenv(t, l)
}

// trace on the article's lab: discovery through vCenter, capture over SSH,
// the echo requests delivered with duplicates removed; the pcapng, JSON and
// HTML kept in --out; nothing left running on the host.
func TestTraceArticle(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	dir := t.TempDir()
	stdout, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "testvm2", "--duration", "3s",
		"--known-hosts", kh, "--proto", "0x01", "--out", dir)
	if err != nil {
		t.Fatalf("trace: %v\n%s\n%s", err, stdout, stderr)
	}
	if !regexp.MustCompile(`ICMP echo request 192\.168\.100\.11 > 192\.168\.100\.12\n +[1-9] delivered, duplicates removed by reverse teaming`).MatchString(stdout) {
		t.Errorf("trace output:\n%s\nstderr:\n%s", stdout, stderr)
	}
	for _, f := range []string{"trace.pcapng", "trace.json", "trace.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// The pcapng carries each packet's verdict as a comment.
	data, _ := os.ReadFile(filepath.Join(dir, "trace.pcapng"))
	r, err := pktcap.NewCaptureReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	commented, total := 0, 0
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		total++
		for _, c := range p.Comments {
			if strings.HasPrefix(c, "capturectl: delivered, duplicates removed by reverse teaming: arrived on vmnic2 and vmnic3") {
				commented++
			}
		}
	}
	if total == 0 || commented < total/2 {
		t.Errorf("%d of %d packets carry the verdict comment", commented, total)
	}
	procs, _ := l.Processes("esx02")
	for _, p := range procs {
		if len(p.Cmdline) > 0 && p.Cmdline[0] == "pktcap-uw" {
			t.Errorf("left running on esx02: %v", p.Cmdline)
		}
	}
}

// The article on a distributed switch (configs/lab-dvs.yaml): discovery
// maps the switch's uplink names to vmnics, the capture runs on those, and
// the verdict is the same as on a standard vSwitch.
func TestTraceDistributed(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-dvs.yaml", true)
	stdout, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "dvsvm2", "--duration", "3s", "--proto", "0x01",
		"--known-hosts", kh)
	if err != nil {
		t.Fatalf("trace: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "esx02/vmnic3/rx") ||
		!regexp.MustCompile(`ICMP echo request 192\.168\.100\.31 > 192\.168\.100\.32\n +[1-9] delivered, duplicates removed by reverse teaming`).MatchString(stdout) {
		t.Errorf("trace output:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// Frames reaching the port only on its non-team uplink: exit code 3 and
// the verdict naming both uplinks.
func TestTraceFiltered(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-non-team-uplink.yaml", false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			l.Net.Ping(ctx, "ext1", "web1", 1, 0)
			time.Sleep(200 * time.Millisecond)
		}
	}()
	stdout, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "web1", "--duration", "3s", "--known-hosts", kh, "--proto", "0x01")
	if exitCode(err) != exitFiltered {
		t.Fatalf("exit %d (%v); want %d\n%s\n%s", exitCode(err), err, exitFiltered, stdout, stderr)
	}
	if !strings.Contains(stdout, "filtered by reverse teaming: arrived on vmnic3, team uplink is vmnic2") {
		t.Errorf("trace output:\n%s", stdout)
	}
}

// capture -o FILE: one pcapng interface per point, named by point.
func TestCaptureToFile(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	file := filepath.Join(t.TempDir(), "c.pcapng")
	_, stderr, err := runCmd(t, context.Background(), "capture", "--vm", "testvm2", "--duration", "2500ms", "--known-hosts", kh, "--proto", "0x01", "-o", file)
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pktcap.NewCaptureReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		count[p.InterfaceName]++
	}
	var names []string
	for _, i := range r.Interfaces() {
		names = append(names, i.Name)
	}
	if strings.Join(names, ",") != "esx02/vmnic2/rx,esx02/vmnic3/rx,esx02/50331657/PortOutput,esx02/50331657/VnicRx" {
		t.Errorf("interfaces %q", names)
	}
	if count["esx02/vmnic2/rx"] < 2 || count["esx02/50331657/PortOutput"] != 2*count["esx02/vmnic2/rx"] || count["esx02/50331657/VnicRx"] != count["esx02/vmnic2/rx"] {
		t.Errorf("frames per point %v; want PortOutput twice the uplink's, VnicRx equal", count)
	}
}

// cleanup reaches a host over SSH, finds nothing of a finished run, and
// says so; without --host it is a usage error.
func TestCleanupCommand(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", false)
	if _, _, err := runCmd(t, context.Background(), "trace", "--vm", "testvm2", "--duration", "1s", "--known-hosts", kh); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runCmd(t, context.Background(), "cleanup", "--host", "esx02", "--known-hosts", kh)
	if err != nil || !strings.Contains(stdout, "esx02: nothing of capturectl's found") {
		t.Errorf("cleanup: %v %q %q", err, stdout, stderr)
	}
	if _, _, err := runCmd(t, context.Background(), "cleanup"); exitCode(err) != exitUsage {
		t.Errorf("cleanup without --host: %v", err)
	}
	// An unknown host key is refused, naming the offered key.
	_, _, err = runCmd(t, context.Background(), "cleanup", "--host", "esx02", "--known-hosts", filepath.Join(t.TempDir(), "empty"))
	if err == nil || !strings.Contains(err.Error(), "SHA256:") {
		t.Errorf("unknown host key: %v; want an error naming the key's fingerprint", err)
	}
}

// discover --ports ssh reads the switchport and team uplink with esxcli
// over SSH, and says so.
func TestDiscoverOverSSH(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", false)
	stdout, stderr, err := runCmd(t, context.Background(), "discover", "--vm", "testvm2", "--ports", "ssh", "--known-hosts", kh)
	if err != nil {
		t.Fatalf("discover: %v\n%s", err, stderr)
	}
	if !regexp.MustCompile(`switchport +50331657 \(from [^)]*ssh[^)]*\)`).MatchString(stdout) || !regexp.MustCompile(`team uplink +vmnic2`).MatchString(stdout) {
		t.Errorf("discover --ports ssh:\n%s", stdout)
	}
}

// analyze takes the traced port from a saved discovery (discover --json).
func TestAnalyzeWithDiscoveryTarget(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	dir := t.TempDir()
	disc, _, err := runCmd(t, context.Background(), "discover", "--vm", "testvm2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "testvm2.json")
	os.WriteFile(target, []byte(disc), 0o600)
	if _, stderr, err := runCmd(t, context.Background(), "capture", "--vm", "testvm2", "--duration", "2500ms", "--known-hosts", kh, "--proto", "0x01", "-o", filepath.Join(dir, "c.pcapng")); err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr)
	}
	stdout, _, err := runCmd(t, context.Background(), "analyze", "--target", target, filepath.Join(dir, "c.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "Traced: testvm2 Network adapter 1 (00:50:56:9d:fd:b1, VLAN 100, route based on originating port ID, team uplink vmnic2)") ||
		!regexp.MustCompile(`[1-9] delivered, duplicates removed by reverse teaming`).MatchString(stdout) {
		t.Errorf("analyze --target:\n%s", stdout)
	}
}
