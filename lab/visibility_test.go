package lab

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func icmpBetween(src, dst string) func([]byte, int) bool {
	s, _ := parseMAC(src)
	d, _ := parseMAC(dst)
	return func(f []byte, _ int) bool {
		_, _, proto, l4, ok := ipv4(f)
		return ok && proto == protoICMP && len(l4) > 0 && l4[0] == 8 && srcMAC(f) == s && dstMAC(f) == d
	}
}

// The article's table for a promiscuous monitor VM, all four rows, seen with
// pktcap-uw at the monitor's VnicRx over SSH; the third row (external ->
// local) flips when the monitor's team uplink changes.
func TestPromiscuousMonitorVisibility(t *testing.T) {
	l := startLab(t, "../configs/lab-promiscuous-monitor.yaml", Options{})
	c := dial(t, l, "esx01")
	_, mon, err := l.Net.FindPort("monitor", 0)
	if err != nil {
		t.Fatal(err)
	}
	// seen counts the echo requests from src to dst the monitor received.
	seen := func(from, to, src, dst string) int {
		t.Helper()
		args := fmt.Sprintf("--switchport %d --capture VnicRx --proto 0x01 --srcmac %s --dstmac %s", mon.PortID, src, dst)
		pkts := capture(t, l, c, args, func() {
			if res, err := l.Net.Ping(context.Background(), from, to, 3, time.Millisecond); err != nil || res.Received != 3 {
				t.Fatalf("ping %s -> %s: %+v, %v", from, to, res, err)
			}
		})
		n := 0
		for _, p := range pkts {
			if _, _, _, l4, ok := ipv4(p.Data); ok && l4[0] == 8 {
				n++
			}
		}
		return n
	}
	const (
		app1 = "00:50:56:9d:10:01"
		app2 = "00:50:56:9d:10:02"
		ext1 = "00:1b:21:00:00:01"
		ext2 = "00:1b:21:00:00:02"
	)
	rows := []struct {
		name           string
		from, to       string
		srcMAC, dstMAC string
		want           int
	}{
		{"local to local", "app1", "app2", app1, app2, 3},
		{"local to external", "app1", "ext1", app1, ext1, 3},
		{"external to local, same team uplink (vmnic2)", "ext1", "app1", ext1, app1, 3},
		{"external to local, other team uplink (vmnic3)", "ext1", "app2", ext1, app2, 0},
		{"external to external", "ext1", "ext2", ext1, ext2, 0},
	}
	for _, r := range rows {
		if got := seen(r.from, r.to, r.srcMAC, r.dstMAC); got != r.want {
			t.Errorf("%s: monitor saw %d echo requests at VnicRx; want %d", r.name, got, r.want)
		}
	}
	// Move the monitor to vmnic3: external -> app1 (arriving on vmnic2) is no
	// longer visible, external -> app2 (arriving on vmnic3) now is.
	if err := l.Net.SetTeamUplink("esx01", mon.PortID, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	if got := seen("ext1", "app1", ext1, app1); got != 0 {
		t.Errorf("after team uplink change: external to app1 seen %d times; want 0", got)
	}
	if got := seen("ext1", "app2", ext1, app2); got != 3 {
		t.Errorf("after team uplink change: external to app2 seen %d times; want 3", got)
	}
}

// count runs pktcap-uw at each of the points at once while traffic runs.
func countAt(t *testing.T, l *Lab, host string, points []string, traffic func()) []int {
	t.Helper()
	c := dial(t, l, host)
	out := make([]int, len(points))
	var wg sync.WaitGroup
	ready := make(chan struct{}, len(points))
	start := make(chan struct{})
	for i, args := range points {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = len(capture(t, l, c, args, func() { ready <- struct{}{}; <-start }))
		}()
	}
	for range points {
		<-ready
	}
	traffic()
	close(start)
	wg.Wait()
	return out
}

func TestIPHashLAGDeliversOneCopy(t *testing.T) {
	l := startLab(t, "../configs/lab-iphash-lag.yaml", Options{})
	_, web, err := l.Net.FindPort("web1", 0)
	if err != nil {
		t.Fatal(err)
	}
	f := fmt.Sprintf("--proto 0x01 --dstmac %s", "00:50:56:9d:20:01")
	got := countAt(t, l, "esx01", []string{
		"--uplink vmnic2 " + f,
		"--uplink vmnic3 " + f,
		fmt.Sprintf("--switchport %d --capture PortOutput %s", web.PortID, f),
		fmt.Sprintf("--switchport %d --capture VnicRx %s", web.PortID, f),
	}, func() {
		for _, st := range []string{"ext1", "ext2"} {
			if res, err := l.Net.Ping(context.Background(), st, "web1", 4, time.Millisecond); err != nil || res.Received != 4 {
				t.Fatalf("ping from %s: %+v %v", st, res, err)
			}
		}
	})
	if got[0]+got[1] != 8 || got[0] == 0 || got[1] == 0 {
		t.Errorf("uplinks: vmnic2 %d + vmnic3 %d; want 8 in all, one copy per frame, on both LAG members", got[0], got[1])
	}
	if got[2] != 8 || got[3] != 8 {
		t.Errorf("PortOutput %d, VnicRx %d; want 8 and 8 (nothing filtered)", got[2], got[3])
	}
}

func TestNonTeamUplinkIsFiltered(t *testing.T) {
	l := startLab(t, "../configs/lab-non-team-uplink.yaml", Options{})
	_, web, err := l.Net.FindPort("web1", 0)
	if err != nil {
		t.Fatal(err)
	}
	f := "--proto 0x01 --dstmac 00:50:56:9d:20:01"
	points := []string{
		"--uplink vmnic3 " + f,
		fmt.Sprintf("--switchport %d --capture PortOutput %s", web.PortID, f),
		fmt.Sprintf("--switchport %d --capture VnicRx %s", web.PortID, f),
	}
	ping := func(want int) func() {
		return func() {
			res, err := l.Net.Ping(context.Background(), "ext1", "web1", 3, time.Millisecond)
			if err != nil || res.Received != want {
				t.Errorf("ping: %+v %v; want %d replies", res, err, want)
			}
		}
	}
	got := countAt(t, l, "esx01", points, ping(0))
	if got[0] != 3 || got[1] != 3 || got[2] != 0 {
		t.Errorf("vmnic3 %d, PortOutput %d, VnicRx %d; want 3, 3, 0 (filtered by reverse teaming)", got[0], got[1], got[2])
	}
	// With the team uplink on vmnic3 the same frames are delivered.
	if err := l.Net.SetTeamUplink("esx01", web.PortID, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	got = countAt(t, l, "esx01", points, ping(3))
	if got[2] != 3 {
		t.Errorf("after moving the team uplink to vmnic3: VnicRx %d; want 3", got[2])
	}
}

// Every topology in configs/ loads and builds.
func TestConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no configs found")
	}
	for _, f := range files {
		cfg, err := LoadConfig(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		n, err := NewNetwork(cfg)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		n.Close()
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		yaml string
		want string
	}{
		{"hosts:\n  - name: esx01\n    bogus: 1\n", "x.yaml:3: field bogus not found"},
		{"hosts:\n  - name: esx01\n    vswitches:\n      - name: vSwitch0\n        uplinks: [eth0]\n", "x.yaml:5: invalid uplink name \"eth0\""},
		{"hosts:\n  - name: esx01\n    vms:\n      - name: a\n        nics:\n          - {portgroup: nope, mac: \"00:50:56:00:00:01\"}\n", "x.yaml:6: VM a: unknown portgroup \"nope\""},
		{"hosts:\n  - name: esx01\n    version: \"9.9\"\n", "x.yaml:3: unknown ESXi version"},
		{"", "x.yaml: empty topology"},
		{"hosts: []\nswitch:\n  mirrors:\n    - {sources: [a], destination: b}\n", "unknown port"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%q): got %v; want error containing %q", c.yaml, err, c.want)
		}
	}
}

// /Net/ReversePathFwdCheckPromisc: a broadcast from a local VM that the
// physical switch floods back in on another uplink reaches a promiscuous
// port whose team uplink that is a second time, unless the knob is set;
// then the reflected copy is dropped (and shown at the Drop point).
func TestReversePathFwdCheckPromisc(t *testing.T) {
	for _, knob := range []bool{false, true} {
		cfg := loadTestConfig(t, "../configs/lab-promiscuous-monitor.yaml")
		cfg.Hosts[0].ReversePathFwdCheckPromisc = knob
		n, err := NewNetwork(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		_, mon, _ := n.FindPort("monitor", 0)
		if err := n.SetTeamUplink("esx01", mon.PortID, "vmnic3"); err != nil {
			t.Fatal(err)
		}
		app1, _ := parseMAC("00:50:56:9d:10:01")
		fromApp1 := func(f []byte, _ int) bool { return srcMAC(f) == app1 && etherType(f) == etherTypeARP }
		rx := subscribe(t, n, "esx01", Selector{Point: VnicRx, PortID: mon.PortID}, fromApp1)
		// The Drop point is host-wide; app2 is promiscuous on vmnic3 too,
		// so its copy is dropped as well. Count the monitor's.
		drop := subscribe(t, n, "esx01", Selector{Point: Drop}, fromApp1)
		if err := n.Broadcast("app1", netip.MustParseAddr("192.168.100.250")); err != nil {
			t.Fatal(err)
		}
		got := len(drain(rx))
		var dropped []Captured
		for _, c := range drain(drop) {
			if c.PortID == mon.PortID {
				dropped = append(dropped, c)
			}
		}
		want, wantDrops := 2, 0
		if knob {
			want, wantDrops = 1, 1
		}
		if got != want || len(dropped) != wantDrops {
			t.Errorf("knob %v: monitor received %d copies of app1's broadcast, Drop showed %d; want %d and %d", knob, got, len(dropped), want, wantDrops)
		}
		if knob && len(dropped) == 1 && dropped[0].Reason != "ReversePathFwdCheckPromisc" {
			t.Errorf("drop reason %q", dropped[0].Reason)
		}
	}
}
