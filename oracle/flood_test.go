package oracle

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/ingest"
	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/scenario"
)

// Issue 11's flood: the article's topology, 100 kfps of UDP from testvm1
// to testvm2 into a small capture buffer (every point drops) and pings
// beside it, traced live: no definite verdict the truth does not allow,
// and no team-uplink disagreement (the lab pins vmnic2).
func TestArticleFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("100 kfps for two seconds (-short)")
	}
	testenv.CheckGoroutines(t)
	topo, sc := articleFlood(t)
	cr := RunCase(t.Context(), &Case{Seed: 0, Topology: topo, Scenario: sc, Summary: "article flood"}, nil)
	if cr.Err != nil {
		t.Fatal(cr.Err)
	}
	rep := &Report{Cases: 1}
	rep.add(0, cr)
	var b strings.Builder
	rep.Print(&b)
	t.Log("\n" + b.String())
	if cr.Matrix.Total() < 1000 {
		t.Fatalf("%d instances compared; want a flood", cr.Matrix.Total())
	}
	if cr.Matrix.Inconclusive() == 0 {
		t.Error("no inconclusive verdict: the small buffer should have made the points drop")
	}
	for _, f := range cr.False {
		t.Error("false verdict: ", f)
	}
	if cr.TeamDisagree != "" {
		t.Error("team-uplink disagreement: ", cr.TeamDisagree)
	}
}

// articleFlood is the article's topology with a small capture buffer on
// esx02, and 100 kfps of UDP from testvm1 to testvm2 with pings beside it.
func articleFlood(t *testing.T) (*lab.Config, *scenario.Scenario) {
	t.Helper()
	topo, err := lab.LoadConfig("../configs/lab-article.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo.Hosts[1].CaptureBuffer = 64
	sc := &scenario.Scenario{VM: "testvm2", Duration: 2 * time.Second, Traffic: []lab.TrafficConfig{
		{Kind: "udp", From: "testvm1", To: "testvm2", Rate: 100000, Size: 100},
		{Kind: "ping", From: "testvm1", To: "testvm2", Interval: 50 * time.Millisecond},
	}}
	if err := sc.Validate("flood"); err != nil {
		t.Fatal(err)
	}
	return topo, sc
}

// killWriter is the pcapng file of a trace killed with -9 once limit
// bytes reached it: the write that crosses the limit is cut where it
// crosses (mid-block), nothing after it arrives.
type killWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
}

func (w *killWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.limit - w.buf.Len(); room < len(p) {
		w.buf.Write(p[:max(room, 0)])
	} else {
		w.buf.Write(p)
	}
	return len(p), nil
}

func (w *killWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// The same flood's pcapng as a trace killed with -9 leaves it (no
// interface statistics, cut mid-block after 1 MiB), read back the way
// analyze reads it: no definite verdict the truth does not allow — the
// points' drops are unknown, so what rests on a point not seeing a frame
// is inconclusive, saying so — and no team-uplink disagreement.
func TestArticleFloodKilledAnalyzed(t *testing.T) {
	if testing.Short() {
		t.Skip("100 kfps for two seconds (-short)")
	}
	testenv.CheckGoroutines(t)
	topo, sc := articleFlood(t)
	var l *lab.Lab
	out := &killWriter{limit: 1 << 20}
	res, err := scenario.Trace(t.Context(), sc, topo, scenario.Options{Output: out,
		OnLab: func(x *lab.Lab) { l = x; x.Net.RecordTruth() }})
	if err != nil {
		t.Fatal(err)
	}
	data := out.bytes()
	if len(data) < out.limit {
		t.Fatalf("the trace wrote %d bytes; want a flood past the %d-byte cut", len(data), out.limit)
	}
	s, err := ingest.Open([]ingest.Input{{Name: "killed.pcapng", Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}}, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Points() {
		if p.DropsKnown || !p.LiveFromFrames {
			t.Errorf("%s: drops known %v, live from frames %v; a killed trace's file records neither", p.Name, p.DropsKnown, p.LiveFromFrames)
		}
	}
	host, port, err := l.Net.FindPort("testvm2", 0)
	if err != nil {
		t.Fatal(err)
	}
	type judged struct {
		head []byte
		v    correlate.Verdict
		e    correlate.Evidence
		why  string
	}
	var js []judged
	r, err := s.Correlate(t.Context(), correlate.Config{Port: res.Correlation.Port,
		OnInstance: func(i *correlate.Instance) { js = append(js, judged{i.Head(), i.Verdict, i.Evidence(), i.Reason()}) }})
	if err != nil {
		t.Fatal(err)
	}
	var m Matrix
	for _, j := range js {
		id, ok := lab.FrameID(j.head)
		if !ok {
			continue
		}
		pf, ok := l.Net.PortFate(id, host, port.PortID)
		if !ok {
			continue
		}
		tr, v := Classify(pf), r.Settle(j.v, j.e)
		m[tr][v]++
		if !Allows(tr, v) {
			t.Errorf("frame %d: %q (%s) but the truth is %q: %+v", id, v, j.why, tr, pf)
		}
	}
	t.Logf("%d instances from %d bytes: %d inconclusive; totals %v", m.Total(), len(data), m.Inconclusive(), r.Totals)
	if m.Total() < 1000 {
		t.Fatalf("%d instances compared; want a flood", m.Total())
	}
	// every point's drops are unknown: the examples say so, not some other
	// reason
	said := false
	for _, f := range r.Flows {
		for _, e := range f.Examples {
			if e.Verdict == correlate.Inconclusive && strings.Contains(e.Reason, "are unknown (they reported no drop count)") {
				said = true
			}
		}
	}
	if m.Inconclusive() > 0 && !said {
		t.Errorf("no example names the unknown drops as the reason: %+v", r.Flows[0].Examples)
	}
	if tc := r.TeamUplinkCheck; tc.Disagree {
		t.Error("team-uplink disagreement: ", tc.Detail)
	}
}
