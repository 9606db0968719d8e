package trace

import (
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/session"
)

// One topology with a host of each layout family (5.5, 6.7, 7.0, 8.0, 9.0):
// discovery through vCenter and a trace over SSH work on each, with the
// port numbers each build uses, and give the article's verdict (the
// mirrored copy from vmnic3 removed by reverse teaming).
func TestRunEachVersion(t *testing.T) {
	l, client, dial := startLab(t, "../configs/lab-versions.yaml")
	for _, c := range []struct {
		vm   string
		port uint32
	}{
		{"vm55", 50331657}, {"vm67", 50331657}, {"vm70", 0x06000013}, {"vm80", 0x06000013}, {"vm90", 0x06000013},
	} {
		t.Run(c.vm, func(t *testing.T) {
			ctx := t.Context()
			targets, err := client.Discover(ctx, c.vm, esxi.DiscoverOptions{})
			if err != nil {
				t.Fatal(err)
			}
			target := targets[0]
			if target.PortID != c.port || target.TeamUplink != "vmnic2" {
				t.Fatalf("discovered port %d, team uplink %q; want %d, vmnic2", target.PortID, target.TeamUplink, c.port)
			}
			plan, err := DefaultPlan(target, session.Plan{Duration: 2 * time.Second, Filter: pktcap.Filter{Proto: pktcap.Some[uint8](1)}})
			if err != nil {
				t.Fatal(err)
			}
			onStart := func(*Live) {
				if err := l.StartTraffic(lab.TrafficConfig{Kind: "ping", From: "ext1", To: c.vm, Interval: 50 * time.Millisecond}); err != nil {
					t.Error(err)
				}
			}
			res, err := Run(ctx, Config{Target: target, Plan: plan, Session: session.Options{Dial: dial}, OnStart: onStart})
			if err != nil {
				t.Fatal(err)
			}
			tot := res.Correlation.Totals
			if tot[correlate.DeliveredDupsRemoved] == 0 || tot[correlate.FilteredReverseTeaming] != 0 {
				t.Errorf("verdicts %v; want echo requests delivered with the mirrored copy removed, none filtered", tot)
			}
			for _, p := range res.Session.Points {
				if p.Frames == 0 {
					t.Errorf("point %s saw no frame", p.Name)
				}
			}
		})
	}
}
