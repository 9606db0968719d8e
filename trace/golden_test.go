package trace

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/teaming"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCase is a trace over fixed inputs: the offline recorder's
// captures of a lab topology, fed to the live trace pipeline as the
// session would feed it, and the terminal and JSON reports it gives.
type goldenCase struct {
	name, topology, host, from, to, vm string
	count                              int
	// dropped marks points that reported drops (by index).
	dropped map[int]uint64
}

var goldenCases = []goldenCase{
	{name: "article", topology: "lab-article.yaml", host: "esx02", from: "testvm1", to: "testvm2", vm: "testvm2", count: 40},
	{name: "non-team-uplink", topology: "lab-non-team-uplink.yaml", host: "esx01", from: "ext1", to: "web1", vm: "web1", count: 40},
	{name: "article-portoutput-dropped", topology: "lab-article.yaml", host: "esx02", from: "testvm1", to: "testvm2", vm: "testvm2", count: 40,
		dropped: map[int]uint64{2: 3}},
}

// goldenInputs records gc's traffic at every uplink of the VM's vSwitch
// and at PortOutput and VnicRx of its port, and returns the points (as
// the trace plan names them), the port and the observations in time
// order.
func goldenInputs(t *testing.T, gc goldenCase) ([]string, correlate.Port, []pktcap.Observation) {
	t.Helper()
	cfg, err := lab.LoadConfig(filepath.Join("..", "configs", gc.topology))
	if err != nil {
		t.Fatal(err)
	}
	n, err := lab.NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, pi, err := n.FindPort(gc.vm, 0)
	n.Close()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var sels []lab.Selector
	for _, u := range []string{"vmnic2", "vmnic3"} { // both topologies' vSwitch1
		names = append(names, gc.host+"/"+u+"/rx")
		sels = append(sels, lab.Selector{Point: lab.UplinkRcv, Uplink: u})
	}
	port := pi.PortID
	for _, p := range []struct {
		stage string
		pt    pktcap.Stage
	}{{"PortOutput", lab.PortOutput}, {"VnicRx", lab.VnicRx}} {
		names = append(names, gc.host+"/"+strconv.FormatUint(uint64(port), 10)+"/"+p.stage)
		sels = append(sels, lab.Selector{Point: p.pt, PortID: port})
	}
	bufs := make([]bytes.Buffer, len(sels))
	spec := lab.OfflineSpec{Host: gc.host, Points: sels, From: gc.from, To: gc.to, Count: gc.count, Size: 64, Gap: time.Millisecond}
	for i := range bufs {
		spec.Out = append(spec.Out, &bufs[i])
	}
	if err := lab.RecordOffline(cfg, spec); err != nil {
		t.Fatal(err)
	}
	var obs []pktcap.Observation
	for i := range bufs {
		r, err := pktcap.NewPcapReader(&bufs[i])
		if err != nil {
			t.Fatal(err)
		}
		for {
			ts, data, origLen, err := r.NextPacket()
			if err != nil {
				break
			}
			obs = append(obs, pktcap.Observation{Point: i, Time: ts, Data: append([]byte(nil), data...), OrigLen: origLen})
		}
	}
	// the order the session delivers them in varies; the live merge puts
	// them in time order, so any order must give the same report
	mac, _ := net.ParseMAC(pi.MAC)
	p := correlate.Port{Name: gc.vm + " Network adapter 1", MAC: mac, VLAN: pi.VLAN, Promiscuous: pi.Promiscuous,
		Policy: teaming.SrcPort, TeamUplink: pi.TeamUplink}
	return names, p, obs
}

// TestTraceGolden: the trace pipeline's terminal and JSON reports over
// fixed inputs (go test -run TraceGolden -update rewrites them).
func TestTraceGolden(t *testing.T) {
	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			names, port, obs := goldenInputs(t, gc)
			if len(obs) == 0 {
				t.Fatal("the recorder captured nothing")
			}
			start, stop := obs[0].Time, obs[0].Time
			for _, o := range obs {
				start, stop = minTime(start, o.Time), maxTime(stop, o.Time)
			}
			stats := make([]goldenStat, len(names))
			for i := range stats {
				stats[i] = goldenStat{start: start.Add(-time.Second), stop: stop.Add(time.Second), dropped: gc.dropped[i]}
			}
			res := goldenCorrelate(t, names, port, obs, stats)
			meta := report.Meta{Title: "capturectl trace of " + port.Name + " on " + gc.host, Host: gc.host}
			var text, js bytes.Buffer
			if err := report.Text(&text, res, meta); err != nil {
				t.Fatal(err)
			}
			if err := report.JSON(&js, res, meta); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, gc.name+".txt", text.Bytes())
			checkGolden(t, gc.name+".json", js.Bytes())
		})
	}
}

type goldenStat struct {
	start, stop time.Time
	dropped     uint64
}

// goldenCorrelate runs obs through the live trace pipeline.
func goldenCorrelate(t *testing.T, names []string, port correlate.Port, obs []pktcap.Observation, stats []goldenStat) *correlate.Result {
	t.Helper()
	var points []correlate.Point
	for _, n := range names {
		p, err := correlate.PointFromName(n)
		if err != nil {
			t.Fatal(err)
		}
		points = append(points, p)
	}
	var plan []session.Point
	for _, n := range names {
		p, err := session.ParsePoint(n)
		if err != nil {
			t.Fatal(err)
		}
		plan = append(plan, p)
	}
	lv, err := newLive(session.Plan{Points: plan}, []vmSpec{{all: true, port: &port}}, DefaultWindow, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := make([]session.PointStats, len(stats))
	for i, st := range stats {
		ss[i] = session.PointStats{Start: st.start, Stop: st.stop, Dropped: int(st.dropped)}
	}
	lv.started(ss)
	// deliver point by point, as streams that arrive one after another
	for i := range names {
		for _, o := range obs {
			if o.Point == i {
				lv.add(o)
			}
		}
	}
	return lv.finish(ss)[0]
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TraceGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
