package correlate_test

import (
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/teaming"
)

// scenario runs traffic on a lab topology with capture taps at the traced
// VM port's uplinks (rx and tx), PortOutput and VnicRx, and correlates.
type scenario struct {
	t      *testing.T
	n      *lab.Network
	host   string
	port   lab.PortInfo
	taps   []*lab.Tap
	points []correlate.Point
	obs    []pktcap.Observation
}

func newScenario(t *testing.T, cfgPath, vm string) *scenario {
	t.Helper()
	n := labtest.Network(t, cfgPath)
	host, port, err := n.FindPort(vm, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{t: t, n: n, host: host, port: port}
	add := func(name string, st pktcap.Stage, uplink string, sel lab.Selector) {
		tp, err := n.Subscribe(host, sel, nil, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tp.Close)
		s.taps = append(s.taps, tp)
		s.points = append(s.points, correlate.Point{Name: name, Stage: st, Uplink: uplink})
	}
	for _, u := range []string{"vmnic2", "vmnic3"} {
		add(host+"/"+u+"/rx", pktcap.StageUplinkRx, u, lab.Selector{Point: lab.UplinkRcv, Uplink: u})
	}
	add("PortOutput", pktcap.StagePortOutput, "", lab.Selector{Point: lab.PortOutput, PortID: port.PortID})
	add("VnicRx", pktcap.StageVnicRx, "", lab.Selector{Point: lab.VnicRx, PortID: port.PortID})
	for _, u := range []string{"vmnic2", "vmnic3"} {
		add(host+"/"+u+"/tx", pktcap.StageUplinkTx, u, lab.Selector{Point: lab.UplinkSnd, Uplink: u})
	}
	return s
}

// collect drains the taps into observations.
func (s *scenario) collect() {
	for i, tp := range s.taps {
		for {
			select {
			case c := <-tp.C:
				s.obs = append(s.obs, pktcap.Observation{Point: i, Time: c.Time, Data: c.Data, OrigLen: len(c.Data), VLAN: c.VLAN})
				continue
			default:
			}
			break
		}
	}
}

func (s *scenario) correlate(mod func(*correlate.Config), during func(*correlate.Correlator)) *correlate.Result {
	s.t.Helper()
	s.collect()
	sort.SliceStable(s.obs, func(i, j int) bool { return s.obs[i].Time.Before(s.obs[j].Time) })
	mac, _ := net.ParseMAC(s.port.MAC)
	cfg := correlate.Config{Points: s.points, Port: correlate.Port{Name: s.port.VM.Name, MAC: mac, VLAN: s.port.VLAN,
		Promiscuous: s.port.Promiscuous, Policy: teaming.Policy(s.port.Policy), TeamUplink: s.port.TeamUplink}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := correlate.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, o := range s.obs {
		c.Add(o)
		if during != nil {
			during(c)
		}
	}
	return c.Close()
}

func (s *scenario) ping(from, to string, count, want int) {
	s.t.Helper()
	res, err := s.n.Ping(context.Background(), from, to, count, time.Millisecond)
	if err != nil || res.Received != want {
		s.t.Fatalf("ping %s -> %s: %+v %v; want %d replies", from, to, res, err, want)
	}
}

// flow finds the flow whose description contains text.
func flow(t *testing.T, r *correlate.Result, text string) *correlate.Flow {
	t.Helper()
	var names []string
	for _, f := range r.Flows {
		if strings.Contains(f.Key.String(), text) {
			return f
		}
		names = append(names, f.Key.String())
	}
	t.Fatalf("no flow %q among %q", text, names)
	return nil
}

func wantCounts(t *testing.T, f *correlate.Flow, want map[correlate.Verdict]int) {
	t.Helper()
	for _, v := range correlate.Verdicts() {
		if f.Counts[v] != want[v] {
			t.Errorf("%s: %d %q; want %d (all counts %v)", f.Key, f.Counts[v], v, want[v], f.Counts)
		}
	}
}

func TestArticleDuplicatesRemoved(t *testing.T) {
	s := newScenario(t, "../configs/lab-article.yaml", "testvm2")
	s.ping("testvm1", "testvm2", 3, 3)
	r := s.correlate(nil, nil)
	req := flow(t, r, "ICMP echo request 192.168.100.11 > 192.168.100.12")
	wantCounts(t, req, map[correlate.Verdict]int{correlate.DeliveredDupsRemoved: 3})
	if len(req.Examples) == 0 || req.Examples[0].Reason != "arrived on vmnic2 and vmnic3; the copy from vmnic3 (not the team uplink vmnic2) was dropped by reverse teaming" {
		t.Errorf("example: %+v", req.Examples)
	}
	rep := flow(t, r, "ICMP echo reply 192.168.100.12 > 192.168.100.11")
	wantCounts(t, rep, map[correlate.Verdict]int{correlate.Transmitted: 3})
	if tc := r.TeamUplinkCheck; tc.Inferred != "vmnic2" || tc.Disagree {
		t.Errorf("team uplink check: %+v; want inferred vmnic2, no disagreement", tc)
	}
	if r.Filtered() {
		t.Errorf("Filtered() = true; want false")
	}
	// The ARP request before the first echo was flooded to both uplinks too.
	wantCounts(t, flow(t, r, "ARP 00:50:56:9d:43:42 > ff:ff:ff:ff:ff:ff"), map[correlate.Verdict]int{correlate.DeliveredDupsRemoved: 1})
	po := r.Points[2]
	if po.Observations != 8 || po.Duplicates != 4 {
		t.Errorf("PortOutput stats %+v; want 8 observations (3 echo requests, 1 ARP, twice each), 4 duplicates", po)
	}
}

func TestNonTeamUplinkFiltered(t *testing.T) {
	s := newScenario(t, "../configs/lab-non-team-uplink.yaml", "web1")
	s.ping("ext1", "web1", 3, 0)
	r := s.correlate(nil, nil)
	f := flow(t, r, "ICMP echo request 192.168.100.201 > 192.168.100.31")
	wantCounts(t, f, map[correlate.Verdict]int{correlate.FilteredReverseTeaming: 3})
	if got := f.Examples[0].Reason; got != "filtered by reverse teaming: arrived on vmnic3, team uplink is vmnic2" {
		t.Errorf("reason %q", got)
	}
	if !r.Filtered() {
		t.Error("Filtered() = false")
	}
}

// Drops at VnicRx make "filtered" inconclusive: never a false "filtered".
func TestDropsMakeInconclusive(t *testing.T) {
	s := newScenario(t, "../configs/lab-non-team-uplink.yaml", "web1")
	s.ping("ext1", "web1", 3, 0)
	r := s.correlate(func(c *correlate.Config) { c.Points[3].Dropped = 5 }, nil)
	f := flow(t, r, "ICMP echo request")
	wantCounts(t, f, map[correlate.Verdict]int{correlate.Inconclusive: 3})
	if got := f.Examples[0].Reason; !strings.Contains(got, "VnicRx dropped 5 frames") {
		t.Errorf("reason %q", got)
	}
}

// A point that started late makes the instances before it inconclusive.
func TestLateStartInconclusive(t *testing.T) {
	s := newScenario(t, "../configs/lab-article.yaml", "testvm2")
	s.ping("testvm1", "testvm2", 1, 1)
	// the model stamps frames with its hop latencies (up to ~150µs after
	// the send), so mark the middle well after the first ping
	time.Sleep(2 * time.Millisecond)
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	s.ping("testvm1", "testvm2", 2, 2)
	r := s.correlate(func(c *correlate.Config) { c.Points[1].Start = mid }, nil)
	f := flow(t, r, "ICMP echo request")
	wantCounts(t, f, map[correlate.Verdict]int{correlate.Inconclusive: 1, correlate.DeliveredDupsRemoved: 2})
	if got := f.Examples[0].Reason; !strings.Contains(got, "vmnic3/rx was not capturing yet") {
		t.Errorf("reason %q", got)
	}
}

func TestIPHashDelivered(t *testing.T) {
	s := newScenario(t, "../configs/lab-iphash-lag.yaml", "web1")
	s.ping("ext1", "web1", 4, 4)
	s.ping("ext2", "web1", 4, 4)
	r := s.correlate(nil, nil)
	wantCounts(t, flow(t, r, "echo request 192.168.100.201"), map[correlate.Verdict]int{correlate.Delivered: 4})
	wantCounts(t, flow(t, r, "echo request 192.168.100.202"), map[correlate.Verdict]int{correlate.Delivered: 4})
}

// A unicast for another MAC reaches the uplinks (flooded as unknown
// unicast) but not this non-promiscuous port.
func TestNotForwarded(t *testing.T) {
	s := newScenario(t, "../configs/lab-article.yaml", "testvm2")
	frame := make([]byte, 60)
	copy(frame, []byte{0x00, 0x50, 0x56, 0x9d, 0xee, 0xee, 0x00, 0x50, 0x56, 0x9d, 0x43, 0x42, 0x08, 0x06})
	if err := s.n.SendRaw("testvm1", frame); err != nil {
		t.Fatal(err)
	}
	r := s.correlate(nil, nil)
	wantCounts(t, flow(t, r, "ARP 00:50:56:9d:43:42 > 00:50:56:9d:ee:ee"), map[correlate.Verdict]int{correlate.NotForwarded: 1})
}

// The monitor sees its neighbours' local traffic as local.
func TestLocal(t *testing.T) {
	s := newScenario(t, "../configs/lab-promiscuous-monitor.yaml", "monitor")
	s.ping("app1", "app2", 2, 2)
	r := s.correlate(nil, nil)
	wantCounts(t, flow(t, r, "echo request 192.168.100.21 > 192.168.100.22"), map[correlate.Verdict]int{correlate.Local: 2})
}

// The team uplink changes mid-capture: the verdicts follow the change the
// correlator is told about, and the result records when.
func TestTeamUplinkChange(t *testing.T) {
	s := newScenario(t, "../configs/lab-non-team-uplink.yaml", "web1")
	s.ping("ext1", "web1", 2, 0)
	time.Sleep(2 * time.Millisecond)
	at := time.Now()
	if err := s.n.SetTeamUplink(s.host, s.port.PortID, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	s.ping("ext1", "web1", 3, 3)
	told := false
	r := s.correlate(nil, func(c *correlate.Correlator) {
		if !told {
			c.SetTeamUplink(at, "vmnic3", "esxcli")
			told = true
		}
	})
	wantCounts(t, flow(t, r, "echo request 192.168.100.201"), map[correlate.Verdict]int{correlate.FilteredReverseTeaming: 2, correlate.Delivered: 3})
	if len(r.TeamUplinks) != 2 || r.TeamUplinks[1].Uplink != "vmnic3" || !r.TeamUplinks[1].At.Equal(at) {
		t.Errorf("timeline %+v", r.TeamUplinks)
	}
	// Not told: the frames themselves show the port now takes vmnic3.
	s2 := newScenario(t, "../configs/lab-non-team-uplink.yaml", "web1")
	if err := s2.n.SetTeamUplink(s2.host, s2.port.PortID, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	s2.ping("ext1", "web1", 2, 2)
	r2 := s2.correlate(nil, nil)
	if !r2.TeamUplinkCheck.Disagree || !strings.Contains(r2.TeamUplinkCheck.Detail, "vmnic3") {
		t.Errorf("team uplink check %+v; want a disagreement naming vmnic3", r2.TeamUplinkCheck)
	}
}
