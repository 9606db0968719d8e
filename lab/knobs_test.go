package lab

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
)

// startCfg is startLab for a topology edited in Go.
func startCfg(t *testing.T, cfg *Config) *Lab {
	t.Helper()
	testenv.CheckGoroutines(t)
	l, err := Start(context.Background(), cfg, Options{NoTraffic: true})
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

// A host whose clock is 37 s behind: its date and the timestamps of its
// pktcap-uw are 37 s behind the lab's (capturectl's) clock, the other
// host's are not; SetHostClock steps it.
func TestHostClock(t *testing.T) {
	cfg := loadTestConfig(t, "../configs/lab-article.yaml")
	cfg.Hosts[1].Clock = ClockConfig{Offset: -37 * time.Second, Drift: 80}
	l := startCfg(t, cfg)
	c := dial(t, l, "esx02")
	before := time.Now()
	out := strings.TrimSpace(mustRun(t, c, "date +%s"))
	sec, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("date +%%s: %q", out)
	}
	if d := before.Unix() - sec; d < 36 || d > 38 {
		t.Errorf("esx02's date is %ds behind the lab's; want 37", d)
	}
	if out := strings.TrimSpace(mustRun(t, dial(t, l, "esx01"), "date +%s")); out != strconv.FormatInt(time.Now().Unix(), 10) &&
		out != strconv.FormatInt(before.Unix(), 10) {
		t.Errorf("esx01's date %s; want the lab's %d", out, before.Unix())
	}
	pkts := capture(t, l, c, "--switchport 50331657 --dir 1 --proto 0x01", func() {
		if _, err := l.Net.Ping(context.Background(), "testvm1", "testvm2", 2, 10*time.Millisecond); err != nil {
			t.Error(err)
		}
	})
	if len(pkts) == 0 {
		t.Fatal("no frames captured")
	}
	for _, p := range pkts {
		if d := time.Since(p.Time); d < 36*time.Second || d > 38*time.Second {
			t.Errorf("frame stamped %v, %v before now; want 37s", p.Time, d)
		}
	}
	off := 2500 * time.Millisecond
	if err := l.Net.SetHostClock("esx02", &off, nil); err != nil {
		t.Fatal(err)
	}
	if d := l.Net.HostNow("esx02").Sub(time.Now()); d < 2400*time.Millisecond || d > 2600*time.Millisecond {
		t.Errorf("after the step esx02 is %v ahead; want 2.5s", d)
	}
	if err := l.Net.SetHostClock("esx02", nil, new(float64(5000))); err == nil {
		t.Error("a drift of 5000 ppm was accepted")
	}
}

// The management link delays capturectl's round trips to the host.
func TestManagementLinkLatency(t *testing.T) {
	cfg := loadTestConfig(t, "../configs/lab-article.yaml")
	cfg.Hosts[1].ManagementLink = LinkConfig{Latency: 30 * time.Millisecond, Bandwidth: 1 << 20}
	l := startCfg(t, cfg)
	c := dial(t, l, "esx02")
	t0 := time.Now()
	if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(t0); rtt < 60*time.Millisecond {
		t.Errorf("round trip %v; the link adds 30 ms each way", rtt)
	}
	if out := mustRun(t, c, "echo ok"); out != "ok\n" {
		t.Errorf("echo ok: %q", out)
	}
	if err := l.SetManagementLink("esx02", LinkConfig{Jitter: -time.Second}); err == nil {
		t.Error("a negative jitter was accepted")
	}
}

// lossPattern sends n UDP frames from testvm1 to testvm2 and reports which
// reached esx02's vmnic2 (whose switch port loses half of what it sends).
func lossPattern(t *testing.T, seed uint64, n int) []bool {
	cfg := loadTestConfig(t, "../configs/lab-article.yaml")
	cfg.Seed = seed
	net := newTestNetworkCfg(t, cfg)
	// the ARP exchange first, without loss
	if _, err := net.Ping(context.Background(), "testvm1", "testvm2", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := net.SetPortLoss("Gi1/0/3", 0.5); err != nil { // -> esx02/vmnic2
		t.Fatal(err)
	}
	tp, err := net.Subscribe("esx02", Selector{Point: UplinkRcv, Uplink: "vmnic2"}, isUDP, 4*n)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	if _, err := net.Generate(context.Background(), GenSpec{From: "testvm1", To: "testvm2", Count: n, Size: 100}); err != nil {
		t.Fatal(err)
	}
	got := make([]bool, n)
	for _, c := range drain(tp) {
		_, _, _, l4, _ := ipv4(c.Data)
		seq := int(uint64(l4[8])<<56 | uint64(l4[9])<<48 | uint64(l4[10])<<40 | uint64(l4[11])<<32 |
			uint64(l4[12])<<24 | uint64(l4[13])<<16 | uint64(l4[14])<<8 | uint64(l4[15]))
		if seq < n {
			got[seq] = true
		}
	}
	return got
}

func isUDP(f []byte, _ int) bool {
	_, _, proto, _, ok := ipv4(f)
	return ok && proto == protoUDP
}

func newTestNetworkCfg(t *testing.T, cfg *Config) *Network {
	t.Helper()
	testenv.CheckGoroutines(t)
	n, err := NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// loss: 0.5 on a switch port loses about half of what it sends, the same
// frames for the same seed and others for another.
func TestPortLoss(t *testing.T) {
	const n = 400
	a, b, other := lossPattern(t, 7, n), lossPattern(t, 7, n), lossPattern(t, 8, n)
	arrived, same, differ := 0, true, false
	for i := range a {
		if a[i] {
			arrived++
		}
		same = same && a[i] == b[i]
		differ = differ || a[i] != other[i]
	}
	if arrived < n*35/100 || arrived > n*65/100 {
		t.Errorf("%d of %d frames crossed a port with loss 0.5", arrived, n)
	}
	if !same {
		t.Error("the same seed lost other frames")
	}
	if !differ {
		t.Error("another seed lost the same frames")
	}
}

// A drop burst makes every capture on the host drop (and count) what it
// would capture; other hosts' captures and forwarding are unaffected.
func TestDropBurst(t *testing.T) {
	net := newTestNetwork(t, "../configs/lab-article.yaml")
	po := subscribe(t, net, "esx02", Selector{Point: PortOutput, PortID: 50331657}, isUDP)
	tx := subscribe(t, net, "esx01", Selector{Point: UplinkSnd, Uplink: "vmnic2"}, isUDP)
	if err := net.DropBurst("esx02", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Generate(context.Background(), GenSpec{From: "testvm1", To: "testvm2", Count: 10, Size: 100}); err != nil {
		t.Fatal(err)
	}
	if got := len(drain(po)); got != 0 || po.Dropped() != 20 {
		t.Errorf("esx02 PortOutput during a burst: %d captured, %d dropped; want 0 and 20 (two copies of 10 frames)", got, po.Dropped())
	}
	if got := len(drain(tx)); got != 10 || tx.Dropped() != 0 {
		t.Errorf("esx01 UplinkSnd: %d captured, %d dropped; want 10 and 0", got, tx.Dropped())
	}
	if got, _ := net.Received("testvm2"); got < 10 {
		t.Errorf("testvm2 received %d frames; a capture's drops do not stop forwarding", got)
	}
}

// The knobs are validated as strictly as the rest of the topology.
func TestKnobErrors(t *testing.T) {
	base := `hosts:
  - name: esx01
    vswitches: [{name: vSwitch0, uplinks: [vmnic0], portgroups: [{name: PG, vlan: 10}]}]
    vms: [{name: vm1, nics: [{portgroup: PG, mac: "00:50:56:00:00:01", ip: 10.0.0.1/24}]}]
%s
stations: [{name: st1, mac: "00:1b:21:00:00:01", ip: 10.0.0.9/24}]
switch:
  ports:
    - {name: p1, connect: esx01/vmnic0%s}
    - {name: p2, connect: "station:st1"}
    - {name: p3}
%s`
	for _, c := range []struct{ host, port, rest, want string }{
		{"    clock: {offset: -37s, drift: 80ppm}\n    managementLink: {latency: 75ms, jitter: 5ms, bandwidth: 2Mbit/s}\n    dropBursts: {every: 1s, length: 20ms}", ", loss: 0.25", "traffic: [{kind: udp, from: vm1, to: st1, rate: 100}]", ""},
		{"    ssh: {service: stopped}\n    lockdown: strict", "", "", ""},
		{"    ssh: {service: running}\n    lockdown: normal", "", "", ""},
		{"    ssh: {service: off}", "", "", `t.yaml:5: unknown SSH service state "off" (want running or stopped)`},
		{"    lockdown: yes", "", "", `unknown lockdown mode "yes" (want disabled, normal or strict)`},
		{"    clock: {drift: 80 ppb}", "", "", "drift"},
		{"    clock: {drift: 2000ppm}", "", "", "at most 1000ppm"},
		{"    managementLink: {bandwidth: fast}", "", "", "bandwidth"},
		{"    managementLink: {latency: -1s}", "", "", "latency -1s"},
		{"    dropBursts: {every: 1s}", "", "", "both every and length"},
		{"    captureStartDelay: -1s", "", "", "captureStartDelay -1s"},
		{"    dropBursts: {every: 1s, length: 2s}", "", "", "would drop everything"},
		{"", ", loss: 1.5", "", "loss 1.5"},
		{"", "", "    - {name: p4, loss: 0.5}", "nothing connected"},
		{"", "", "traffic: [{kind: ping, from: vm1, to: st1, rate: 10}]", "ping traffic has no rate"},
		{"", "", "traffic: [{kind: broadcast, from: vm1, to: st1, size: 100}]", "fixed frame size"},
		{"", "", "traffic: [{kind: udp, from: vm1, to: st1, rate: 10, interval: 1s}]", "paced by rate"},
		{"", "", "traffic: [{kind: udp, from: vm1, to: st1, rate: 10, size: 20}]", "size 20"},
	} {
		rest := c.rest
		doc := strings.Replace(base, "%s", c.host, 1)
		doc = strings.Replace(doc, "%s", c.port, 1)
		if strings.HasPrefix(rest, "    - ") {
			doc = strings.Replace(doc, "%s", rest, 1)
		} else {
			doc = strings.Replace(doc, "%s", "", 1) + rest + "\n"
		}
		_, err := ParseConfig([]byte(doc), "t.yaml")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %s %s: %v", c.host, c.port, rest, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %s %s: %v; want an error containing %q", c.host, c.port, rest, err, c.want)
		}
	}
}
