package lab

import (
	"context"
	"path/filepath"
	"strings"
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

// The article's table for a promiscuous monitor VM, all four rows; the third
// row (external -> local) flips when the monitor's team uplink changes.
func TestPromiscuousMonitorVisibility(t *testing.T) {
	const (
		app1 = "00:50:56:9d:10:01"
		app2 = "00:50:56:9d:10:02"
		ext1 = "00:1b:21:00:00:01"
		ext2 = "00:1b:21:00:00:02"
	)
	n := newTestNetwork(t, "../configs/lab-promiscuous-monitor.yaml")
	_, mon, err := n.FindPort("monitor", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := func(from, to, srcMAC, dstMAC string) int {
		t.Helper()
		tp := subscribe(t, n, "esx01", Selector{Point: VnicRx, PortID: mon.PortID}, icmpBetween(srcMAC, dstMAC))
		defer tp.Close()
		res, err := n.Ping(context.Background(), from, to, 3, time.Millisecond)
		if err != nil || res.Received != 3 {
			t.Fatalf("ping %s -> %s: %+v, %v", from, to, res, err)
		}
		return len(drain(tp))
	}
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
	if err := n.SetTeamUplink("esx01", mon.PortID, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	if got := seen("ext1", "app1", ext1, app1); got != 0 {
		t.Errorf("after team uplink change: external to app1 seen %d times; want 0", got)
	}
	if got := seen("ext1", "app2", ext1, app2); got != 3 {
		t.Errorf("after team uplink change: external to app2 seen %d times; want 3", got)
	}
}

func TestIPHashLAGDeliversOneCopy(t *testing.T) {
	n := newTestNetwork(t, "../configs/lab-iphash-lag.yaml")
	_, web, err := n.FindPort("web1", 0)
	if err != nil {
		t.Fatal(err)
	}
	f := icmpBetween("00:1b:21:00:00:01", "00:50:56:9d:20:01")
	f2 := icmpBetween("00:1b:21:00:00:02", "00:50:56:9d:20:01")
	either := func(b []byte, v int) bool { return f(b, v) || f2(b, v) }
	u2 := subscribe(t, n, "esx01", Selector{Point: UplinkRcv, Uplink: "vmnic2"}, either)
	u3 := subscribe(t, n, "esx01", Selector{Point: UplinkRcv, Uplink: "vmnic3"}, either)
	po := subscribe(t, n, "esx01", Selector{Point: PortOutput, PortID: web.PortID}, either)
	rx := subscribe(t, n, "esx01", Selector{Point: VnicRx, PortID: web.PortID}, either)
	for _, st := range []string{"ext1", "ext2"} {
		if res, err := n.Ping(context.Background(), st, "web1", 4, time.Millisecond); err != nil || res.Received != 4 {
			t.Fatalf("ping from %s: %+v %v", st, res, err)
		}
	}
	a, b := len(drain(u2)), len(drain(u3))
	if a+b != 8 {
		t.Errorf("uplinks: vmnic2 %d + vmnic3 %d; want 8 copies in all (one per frame)", a, b)
	}
	if a == 0 || b == 0 {
		t.Errorf("uplinks: vmnic2 %d, vmnic3 %d; want the LAG hash to use both members", a, b)
	}
	if got := len(drain(po)); got != 8 {
		t.Errorf("PortOutput: got %d; want 8", got)
	}
	if got := len(drain(rx)); got != 8 {
		t.Errorf("VnicRx: got %d; want 8 (nothing filtered)", got)
	}
}

func TestNonTeamUplinkIsFiltered(t *testing.T) {
	n := newTestNetwork(t, "../configs/lab-non-team-uplink.yaml")
	_, web, err := n.FindPort("web1", 0)
	if err != nil {
		t.Fatal(err)
	}
	f := icmpBetween("00:1b:21:00:00:01", "00:50:56:9d:20:01")
	u3 := subscribe(t, n, "esx01", Selector{Point: UplinkRcv, Uplink: "vmnic3"}, f)
	po := subscribe(t, n, "esx01", Selector{Point: PortOutput, PortID: web.PortID}, f)
	rx := subscribe(t, n, "esx01", Selector{Point: VnicRx, PortID: web.PortID}, f)
	res, err := n.Ping(context.Background(), "ext1", "web1", 3, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 0 {
		t.Errorf("ping: %d replies; want 0 (requests filtered by reverse teaming)", res.Received)
	}
	if got := len(drain(u3)); got != 3 {
		t.Errorf("vmnic3 rx: got %d; want 3", got)
	}
	if got := len(drain(po)); got != 3 {
		t.Errorf("PortOutput: got %d; want 3", got)
	}
	if got := len(drain(rx)); got != 0 {
		t.Errorf("VnicRx: got %d; want 0", got)
	}
	// Pin the team uplink to vmnic3: now the same frames are delivered.
	if err := n.SetTeamUplink("esx01", web.PortID, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	if res, _ := n.Ping(context.Background(), "ext1", "web1", 2, time.Millisecond); res.Received != 2 {
		t.Errorf("after moving the team uplink to vmnic3: %d replies; want 2", res.Received)
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
