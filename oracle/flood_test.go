package oracle

import (
	"strings"
	"testing"
	"time"

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
