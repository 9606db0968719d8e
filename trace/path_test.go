package trace

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/session"
)

func discoverOne(t *testing.T, client *esxi.Client, vm string) esxi.Target {
	t.Helper()
	ts, err := client.Discover(t.Context(), vm, esxi.DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	i, err := Select(ts, vm, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ts[i]
}

func pathFlow(r *correlate.PathResult, dir correlate.Direction) *correlate.PathFlow {
	for _, f := range r.Flows {
		if f.Direction == dir && f.Key.Proto == 1 {
			return f
		}
	}
	return nil
}

// The must-show: no mirror, the switch port toward the receiver's
// team uplink losing half of what it sends, the sender's host 2.5 s
// ahead. Every echo request the lab lost on the wire is lost_in_network
// (the lab's own count of what it lost bounds it), the others delivered,
// none filtered; the replies are followed back, delivered; the clocks are
// aligned from the frames within a millisecond.
func TestPathMustShow(t *testing.T) {
	l, client, dial := startLab(t, "../configs/lab-path.yaml")
	b, a := discoverOne(t, client, "testvm2"), discoverOne(t, client, "testvm1")
	plan, notes, err := PathPlan(b, a, session.Plan{Duration: 3 * time.Second, Filter: pktcap.Filter{Proto: pktcap.Some[uint8](1)}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Points) != 16 || len(notes) != 0 {
		t.Fatalf("plan: %d points (want 8 a host), notes %q", len(plan.Points), notes)
	}
	l.Net.RecordTruth()
	onStart := func(lv *Live) {
		if err := l.StartTraffic(lab.TrafficConfig{Kind: "ping", From: "testvm1", To: "testvm2", Interval: 50 * time.Millisecond}); err != nil {
			t.Error(err)
		}
	}
	res, err := Run(t.Context(), Config{Target: b, From: &From{Target: &a, Address: "testvm1"}, Plan: plan,
		Session: session.Options{Dial: dial}, Poll: -1, OnStart: onStart})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Path
	if p == nil {
		t.Fatal("no path result")
	}
	for _, st := range res.Session.Points {
		if st.Dropped != 0 {
			t.Fatalf("%s dropped %d: the lab should not drop at 40 frames/s", st.Name, st.Dropped)
		}
	}
	req, rep := pathFlow(p, correlate.AtoB), pathFlow(p, correlate.BtoA)
	if req == nil || rep == nil {
		t.Fatalf("flows: %+v", p.Flows)
	}
	t.Logf("requests %v; replies %v; clock %+v", req.Counts.ByID(), rep.Counts.ByID(), p.Clock)
	if req.Counts[correlate.PathLostInNetwork] < 5 || req.Counts[correlate.PathDelivered] < 5 {
		t.Errorf("requests: %v; want some lost_in_network and some delivered", req.Counts.ByID())
	}
	for _, v := range []correlate.PathVerdict{correlate.PathFiltered, correlate.PathNotSent, correlate.PathNotForwarded, correlate.PathDroppedAtPort} {
		if req.Counts[v]+rep.Counts[v] != 0 {
			t.Errorf("%s: requests %d, replies %d; want none", v.ID(), req.Counts[v], rep.Counts[v])
		}
	}
	// every delivered request is answered; at the captures' edges a
	// request or its reply may be inconclusive (a point not live yet, or
	// stopped already)
	if d, r := req.Counts[correlate.PathDelivered], rep.Counts[correlate.PathDelivered]; r > d+3 || r < d-3 {
		t.Errorf("replies: %v; want one delivered per delivered request (%d)", rep.Counts.ByID(), d)
	}
	if rep.Counts[correlate.PathLostInNetwork] != 0 {
		t.Errorf("replies lost in the network: %d (the lossy port sends only toward esx02)", rep.Counts[correlate.PathLostInNetwork])
	}
	// the lab's truth: how many requests the lossy port took while every
	// point captured; each lost_in_network must be one of them
	lost := 0
	for id := uint64(1); id <= uint64(l.Net.Frames()); id++ {
		f, ok := l.Net.Fate(id)
		if !ok || f.From != "testvm1" {
			continue
		}
		for _, e := range f.Events {
			if e.Kind == lab.Stopped && e.Reason == lab.LostOnWire {
				lost++
			}
		}
	}
	if got := req.Counts[correlate.PathLostInNetwork]; got > lost {
		t.Errorf("%d lost_in_network, the lab lost only %d", got, lost)
	}
	ck := p.Clock
	if !ck.FromFrames || ck.Inconsistent || ck.Uncertainty > 5*time.Millisecond {
		t.Errorf("clock alignment: %+v", ck)
	}
	var cross bool
	for _, h := range req.Hops {
		if h.CrossHost {
			cross = true
			if h.Latency.Unknown || h.Latency.Uncertainty != ck.Uncertainty || h.Latency.P50-h.Latency.Uncertainty > 50*time.Millisecond {
				t.Errorf("cross-host hop %+v", h)
			}
		}
	}
	if !cross {
		t.Errorf("no cross-host hop: %+v", req.Hops)
	}
	// the receiver's own view (as trace without --from) is there too
	if res.Correlation == nil || len(res.Correlation.Points) != 4 {
		t.Errorf("receive-side correlation: %+v", res.Correlation)
	}
}

func pathTarget(vm, host string, port uint32, vswitch string, uplinks ...string) esxi.Target {
	t := esxi.Target{VM: vm, NIC: "Network adapter 1", Host: host, PortID: port, VSwitch: vswitch, VLAN: 100,
		MAC: "00:50:56:9d:00:01", TeamUplink: uplinks[0]}
	for _, u := range uplinks {
		t.Uplinks = append(t.Uplinks, esxi.Uplink{Name: u})
	}
	return t
}

// PathPlan: 8 points a host with two uplinks; PortInput left out (and
// said) where a host needs more; refused with the reason where even that
// is too many; uplinks not captured when both ends share a host, a
// vSwitch and a VLAN; the traced vNIC as its own sender refused.
func TestPathPlan(t *testing.T) {
	base := session.Plan{Duration: time.Second}
	a, b := pathTarget("a", "esx01", 50331657, "vSwitch1", "vmnic2", "vmnic3"), pathTarget("b", "esx02", 50331657, "vSwitch1", "vmnic2", "vmnic3")
	p, notes, err := PathPlan(b, a, base, 0)
	if err != nil || len(p.Points) != 16 || len(notes) != 0 {
		t.Fatalf("two uplinks: %d points, %q, %v", len(p.Points), notes, err)
	}
	want := []string{"esx01/50331657/VnicTx", "esx01/50331657/PortInput", "esx01/vmnic2/tx", "esx01/vmnic3/tx",
		"esx01/vmnic2/rx", "esx01/vmnic3/rx", "esx01/50331657/PortOutput", "esx01/50331657/VnicRx"}
	for i, w := range want {
		if got := p.Points[i].Name(); got != w {
			t.Errorf("point %d: %s, want %s", i, got, w)
		}
	}
	// three uplinks on esx02: PortInput left out there (9 points: more
	// than 8, refused); with a limit of 9, fits without PortInput
	b3 := pathTarget("b", "esx02", 50331657, "vSwitch1", "vmnic2", "vmnic3", "vmnic4")
	if _, _, err := PathPlan(b3, a, base, 0); !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "9 capture points on esx02") {
		t.Errorf("three uplinks: %v; want ErrPlan naming 9 points on esx02", err)
	}
	p, notes, err = PathPlan(b3, a, base, 9)
	if err != nil || len(p.Points) != 17 || len(notes) != 1 || !strings.Contains(notes[0], "esx02") {
		t.Errorf("three uplinks, 9 a host: %d points, %q, %v", len(p.Points), notes, err)
	}
	// same host, vSwitch and VLAN: switched locally, 8 port points
	a2 := pathTarget("a", "esx02", 50331658, "vSwitch1", "vmnic2", "vmnic3")
	p, notes, err = PathPlan(b, a2, base, 0)
	if err != nil || len(p.Points) != 8 || len(notes) != 1 || !strings.Contains(notes[0], "switched locally") {
		t.Errorf("same host: %d points, %q, %v", len(p.Points), notes, err)
	}
	if _, _, err := PathPlan(b, b, base, 0); !errors.Is(err, ErrPlan) {
		t.Errorf("itself: %v", err)
	}
}
