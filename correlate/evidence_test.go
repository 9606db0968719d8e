package correlate

import (
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// A local VM's broadcast, flooded back by the physical switch onto the
// non-team uplink vmnic3 (oracle seed 2): PortOutput sees the local copy
// and the vmnic3 copy, VnicRx one. The vmnic3 copy was removed by reverse
// teaming; it was called "delivered; the others were dropped, not by
// reverse teaming". Settle keeps the verdict with no drops and makes it
// inconclusive when vmnic3's capture dropped frames (the local copy may
// have been one it missed).
func TestLocalCopyAndFilteredUplinkCopy(t *testing.T) {
	var got []Verdict
	var ev []Evidence
	c, err := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"},
		OnInstance: func(i *Instance) { got, ev = append(got, i.Verdict), append(ev, i.Evidence()) }})
	if err != nil {
		t.Fatal(err)
	}
	c.SetTeamUplink(time.Unix(0, 0), "vmnic2", "test")
	t0 := time.Unix(1000, 0)
	f := synthFrame(7)
	c.Add(pktcap.Observation{Point: 2, Time: t0, Data: f})                            // local copy at PortOutput
	c.Add(pktcap.Observation{Point: 3, Time: t0.Add(6 * time.Microsecond), Data: f})  // delivered
	c.Add(pktcap.Observation{Point: 1, Time: t0.Add(20 * time.Microsecond), Data: f}) // back on vmnic3
	c.Add(pktcap.Observation{Point: 2, Time: t0.Add(24 * time.Microsecond), Data: f}) // at PortOutput again
	r := c.Close()
	if len(got) != 1 || got[0] != DeliveredDupsRemoved {
		t.Fatalf("verdicts %v; want one %q", got, DeliveredDupsRemoved)
	}
	if v := r.Settle(got[0], ev[0]); v != DeliveredDupsRemoved {
		t.Errorf("settled without drops: %q", v)
	}
	r.Points[1].Dropped = 3
	if v := r.Settle(got[0], ev[0]); v != Inconclusive {
		t.Errorf("settled with vmnic3 dropping: %q; want inconclusive", v)
	}
}

// A stream that falls behind more than the merge waits delivers its
// sightings out of order: the article's vmnic3 copy arrives after the
// instance was judged (oracle, under load: "delivered" for frames whose
// vmnic3 copy reverse teaming removed, and "not forwarded" for the late
// copy on its own). The point counts as one that dropped: the instance
// turns inconclusive when settled, and the late sighting is not judged.
func TestLateSighting(t *testing.T) {
	var got []Verdict
	var ev []Evidence
	c, err := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"},
		OnInstance: func(i *Instance) { got, ev = append(got, i.Verdict), append(ev, i.Evidence()) }})
	if err != nil {
		t.Fatal(err)
	}
	c.SetTeamUplink(time.Unix(0, 0), "vmnic2", "test")
	t0 := time.Unix(1000, 0)
	f, g := synthFrame(1), synthFrame(2)
	c.Add(pktcap.Observation{Point: 0, Time: t0, Data: f})
	c.Add(pktcap.Observation{Point: 2, Time: t0.Add(4 * time.Microsecond), Data: f})
	c.Add(pktcap.Observation{Point: 2, Time: t0.Add(20 * time.Microsecond), Data: f})
	c.Add(pktcap.Observation{Point: 3, Time: t0.Add(10 * time.Microsecond), Data: f})
	c.Add(pktcap.Observation{Point: 0, Time: t0.Add(time.Second), Data: g}) // judges f
	c.Add(pktcap.Observation{Point: 1, Time: t0.Add(16 * time.Microsecond), Data: f})
	r := c.Close()
	if r.Points[1].Late != 1 {
		t.Errorf("vmnic3 late sightings: %d; want 1", r.Points[1].Late)
	}
	if len(got) != 3 || got[2] != Inconclusive {
		t.Fatalf("verdicts %v; want the late sighting's own instance inconclusive", got)
	}
	if v := r.Settle(got[0], ev[0]); v != Inconclusive {
		t.Errorf("f, judged without its vmnic3 copy, settled %q; want inconclusive", v)
	}
	if r.Totals[Delivered] != 0 || r.Totals[Inconclusive] != 2 {
		t.Errorf("totals %v; want f and the late sighting inconclusive", CountsByID(r.Totals))
	}
}
