package trace

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/session"
)

// A live trace of the article lab through Run: structural checks, since
// times and the frames at a capture's edges vary from run to run.
//   - OnStart is called once, when every point of the plan streams;
//   - what Live.Verdicts counted while running is the result's totals;
//   - every point the plan named has statistics and saw frames, the host's
//     clock was read, and the common live window is not empty;
//   - a team-uplink change the lab makes during the trace is seen by the
//     poller and recorded in the result, and the frames after it are
//     judged against the new uplink.
func TestRunLive(t *testing.T) {
	l, client, dial := startLab(t, "../configs/lab-article.yaml")
	ctx := t.Context()
	const vm = "testvm2"
	targets, err := client.Discover(ctx, vm, esxi.DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nic, err := Select(targets, vm, 0)
	if err != nil {
		t.Fatal(err)
	}
	target := targets[nic]
	if target.TeamUplink != "vmnic2" {
		t.Fatalf("team uplink %q; the article lab pins vmnic2", target.TeamUplink)
	}
	plan, err := DefaultPlan(target, session.Plan{Duration: 3 * time.Second, Filter: pktcap.Filter{Proto: pktcap.Some[uint8](1)}})
	if err != nil {
		t.Fatal(err)
	}

	var starts atomic.Int32
	var live *Live
	var changed atomic.Value // time.Time of the lab's change
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	onStart := func(lv *Live) {
		starts.Add(1)
		live = lv
		for _, p := range lv.Points() {
			if p.Start.IsZero() {
				t.Errorf("OnStart: point %s not started", p.Name)
			}
		}
		if err := l.StartTraffic(lab.TrafficConfig{Kind: "ping", From: "testvm1", To: vm, Interval: 50 * time.Millisecond}); err != nil {
			t.Error(err)
		}
		wg.Go(func() {
			select {
			case <-lv.Done():
				return
			case <-time.After(time.Second):
			}
			host, port, err := l.Net.FindPort(vm, 0)
			if err == nil {
				err = l.Net.SetTeamUplink(host, port.PortID, "vmnic3")
			}
			if err != nil {
				t.Error(err)
			}
			changed.Store(time.Now())
		})
	}
	res, err := Run(ctx, Config{Target: target, Plan: plan, Session: session.Options{Dial: dial},
		TeamUplink: Rediscover(client, vm, nic), Poll: 200 * time.Millisecond, OnStart: onStart})
	if err != nil {
		t.Fatal(err)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("OnStart called %d times", n)
	}
	c := res.Correlation
	for _, p := range res.Session.Points {
		if p.Dropped != 0 {
			t.Fatalf("point %s dropped %d frames: the counts below would differ (the lab should not drop at 20 frames/s)", p.Name, p.Dropped)
		}
	}
	var sum int
	for v, n := range live.Verdicts() {
		if c.Totals[v] != n {
			t.Errorf("%s: Live counted %d, result has %d", v, n, c.Totals[v])
		}
		sum += n
	}
	if sum == 0 {
		t.Fatal("no frame judged")
	}
	if len(res.Session.Points) != len(plan.Points) || len(c.Points) != len(plan.Points) {
		t.Errorf("%d session points, %d correlated; plan has %d", len(res.Session.Points), len(c.Points), len(plan.Points))
	}
	for _, p := range res.Session.Points {
		if p.Frames == 0 {
			t.Errorf("point %s saw no frame", p.Name)
		}
	}
	// the lab's hosts keep capturectl's clock: the offset read is within
	// its uncertainty of zero (how small the uncertainty is depends on
	// the machine's load: session's TestReadClockLab measures it)
	if ck := res.Session.Clocks["esx02"]; !ck.Known() || ck.Offset.Abs() > ck.Uncertainty {
		t.Errorf("esx02's clock: %+v", ck)
	} else {
		t.Logf("esx02's clock: %v ± %v", ck.Offset, ck.Uncertainty)
	}
	if c.CommonStart.IsZero() || !c.CommonStart.Before(c.CommonStop) {
		t.Errorf("common window %v..%v", c.CommonStart, c.CommonStop)
	}
	at, _ := changed.Load().(time.Time)
	if at.IsZero() {
		t.Fatal("the lab did not change the team uplink")
	}
	var seen *correlate.TeamUplinkChange
	for i, ch := range c.TeamUplinks {
		if ch.Uplink == "vmnic3" {
			seen = &c.TeamUplinks[i]
		}
	}
	if seen == nil {
		t.Fatalf("team uplink change not recorded: %+v", c.TeamUplinks)
	}
	if seen.At.Before(at) {
		t.Errorf("change recorded at %v, before the lab made it (%v)", seen.At, at)
	}
	// Before the change the article's echo requests come in on both
	// uplinks and the vmnic2 copy is delivered; after it the vmnic3 copy
	// is: either way every request reaches the VM, none is filtered as a
	// whole.
	if c.Totals[correlate.Delivered]+c.Totals[correlate.DeliveredDupsRemoved] == 0 {
		t.Errorf("nothing delivered: %v", c.Totals)
	}
}

// Two vNICs on one host in one run (issue 14: trace --vm a --vm b): the
// uplink points are captured once and seen by both correlators; each vNIC
// is judged on its own port. ext1's pings to app2 arrive on vmnic3, app2's
// team uplink: delivered to app2, filtered by reverse teaming for the
// promiscuous monitor (team uplink vmnic2) — the article's blind spot,
// both sides of it from one capture.
func TestRunTwoVMs(t *testing.T) {
	l, client, dial := startLab(t, "../configs/lab-promiscuous-monitor.yaml")
	ctx := t.Context()
	var targets []esxi.Target
	for _, vm := range []string{"monitor", "app2"} {
		ts, err := client.Discover(ctx, vm, esxi.DiscoverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, ts[0])
	}
	plan, err := PlanFor(targets, session.Plan{Duration: 2500 * time.Millisecond, Filter: pktcap.Filter{Proto: pktcap.Some[uint8](1)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Points) != 6 {
		t.Fatalf("plan %d points; want the 2 uplinks once and PortOutput and VnicRx of each port", len(plan.Points))
	}
	var live *Live
	onStart := func(lv *Live) {
		live = lv
		if err := l.StartTraffic(lab.TrafficConfig{Kind: "ping", From: "ext1", To: "app2", Interval: 100 * time.Millisecond}); err != nil {
			t.Error(err)
		}
	}
	res, err := Run(ctx, Config{Target: targets[0], Also: []Also{{Target: targets[1]}}, Plan: plan,
		Session: session.Options{Dial: dial}, Poll: -1, OnStart: onStart})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Also) != 1 || res.Also[0].Target.VM != "app2" {
		t.Fatalf("results: %+v", res.Also)
	}
	requests := func(r *correlate.Result) [8]int {
		for _, f := range r.Flows {
			if f.Key.String() == "ICMP echo request 192.168.100.201 > 192.168.100.22" {
				return f.Counts
			}
		}
		return [8]int{}
	}
	mon, app := requests(res.Correlation), requests(res.Also[0].Correlation)
	if mon[correlate.FilteredReverseTeaming] < 5 || mon[correlate.Delivered]+mon[correlate.DeliveredDupsRemoved] != 0 {
		t.Errorf("monitor: %v; want the requests filtered by reverse teaming", mon)
	}
	if app[correlate.Delivered] < 5 || app[correlate.FilteredReverseTeaming] != 0 {
		t.Errorf("app2: %v; want the requests delivered", app)
	}
	// each correlator has its own points: the monitor's and app2's
	// PortOutput differ, the uplinks are the same session points
	if len(res.Correlation.Points) != 4 || len(res.Also[0].Correlation.Points) != 4 ||
		res.Correlation.Points[0].Name != res.Also[0].Correlation.Points[0].Name ||
		res.Correlation.Points[2].Name == res.Also[0].Correlation.Points[2].Name {
		t.Errorf("points: %+v / %+v", res.Correlation.Points, res.Also[0].Correlation.Points)
	}
	sum := func(m map[correlate.Verdict]int) (n int) {
		for _, k := range m {
			n += k
		}
		return n
	}
	if a, b, all := sum(live.VMVerdicts(0)), sum(live.VMVerdicts(1)), sum(live.Verdicts()); a == 0 || b == 0 || a+b != all {
		t.Errorf("live verdicts: %d + %d, all %d", a, b, all)
	}
}

// startLab starts a lab with its vCenter and returns it, an API client
// logged in to it and a session.Dialer for its hosts.
func startLab(t *testing.T, topology string) (*lab.Lab, *esxi.Client, session.Dialer) {
	t.Helper()
	l := labtest.Start(t, topology, lab.Options{VCenter: true, NoTraffic: true})
	known := labtest.KnownHostsFile(t, l)
	vc := l.VCenter
	client, err := esxi.Connect(t.Context(), esxi.Config{URL: vc.URL().String(), Username: vc.Username(), Password: vc.Password(), CACerts: vc.CertificateFile()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(context.Background()) })
	hosts := map[string]lab.HostInfo{}
	for _, h := range l.Hosts() {
		hosts[h.Name] = h
	}
	dial := func(ctx context.Context, host string) (*esxi.SSHClient, error) {
		h := hosts[host]
		return esxi.Dial(ctx, esxi.SSHConfig{Host: host, Addr: h.Addr, Password: h.Password, KnownHostsFile: known,
			NoAgent: true, Getenv: func(string) string { return "" }})
	}
	return l, client, dial
}
