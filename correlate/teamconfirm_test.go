package correlate

import (
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// teamRun feeds a tracked correlator (team vmnic2 read at t0) frames at
// the given offsets from t0 that arrive on uplink point up only, reach
// PortOutput and never VnicRx, calling step between frames (polls), and
// returns the result and each instance's verdict as settled.
func teamRun(t *testing.T, up int, frames []time.Duration, step func(c *Correlator, i int)) (*Result, []Verdict) {
	t.Helper()
	type judged struct {
		v Verdict
		e Evidence
	}
	var js []judged
	c, err := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"},
		OnInstance: func(i *Instance) { js = append(js, judged{i.Verdict, i.Evidence()}) }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	c.TrackTeam(t0)
	for i, d := range frames {
		at := t0.Add(d)
		f := synthFrame(uint16(i))
		c.Add(pktcap.Observation{Point: up, Time: at, Data: f, OrigLen: len(f)})
		c.Add(pktcap.Observation{Point: 2, Time: at.Add(4 * time.Microsecond), Data: f, OrigLen: len(f)})
		step(c, i)
	}
	r := c.Close()
	var vs []Verdict
	for _, j := range js {
		vs = append(vs, r.Settle(j.v, j.e))
	}
	return r, vs
}

// local is a frame from another port of the vSwitch, delivered: it moves
// the correlator's time on (the merge judges a frame once its window
// passed).
func local(c *Correlator, at time.Time, seq uint16) {
	f := synthFrame(seq)
	c.Add(pktcap.Observation{Point: 2, Time: at, Data: f, OrigLen: len(f)})
	c.Add(pktcap.Observation{Point: 3, Time: at.Add(4 * time.Microsecond), Data: f, OrigLen: len(f)})
}

// judgedAs is an instance's verdict as judged and what it rests on.
type judgedAs struct {
	v Verdict
	e Evidence
}

// tracked is a correlator over points whose port's team uplink is team,
// tracked from 1000 s on (TrackTeam), and the instances it judges.
func tracked(t *testing.T, points []Point, team string) (*Correlator, *[]judgedAs) {
	t.Helper()
	js := &[]judgedAs{}
	c, err := New(Config{Points: points, Port: Port{Policy: "srcport", TeamUplink: team},
		OnInstance: func(i *Instance) { *js = append(*js, judgedAs{i.Verdict, i.Evidence()}) }})
	if err != nil {
		t.Fatal(err)
	}
	c.TrackTeam(time.Unix(1000, 0))
	return c, js
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// Filtered frames between two polls that saw the same team uplink are
// filtered; those after the last poll are inconclusive, saying so.
func TestTeamConfirmed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// frames at 100, 200 and 900 ms; a poll at 500 ms confirms vmnic2
	r, vs := teamRun(t, 1, []time.Duration{ms(100), ms(200), ms(900)}, func(c *Correlator, i int) {
		if i == 1 {
			local(c, t0.Add(ms(400)), 999)
			c.ConfirmTeamUplink(t0.Add(ms(500)), t0.Add(ms(501)), "vmnic2", "poll")
		}
	})
	want := []Verdict{FilteredReverseTeaming, FilteredReverseTeaming, Inconclusive}
	if len(vs) < 3 || vs[0] != want[0] || vs[1] != want[1] || vs[len(vs)-1] != want[2] {
		t.Fatalf("settled %v; want %v (and one local frame)", vs, want)
	}
	if got := r.Totals[FilteredReverseTeaming]; got != 2 {
		t.Errorf("%d filtered in the totals; want 2", got)
	}
	found := false
	for _, f := range r.Flows {
		for _, e := range f.Examples {
			if e.Verdict == Inconclusive && strings.Contains(e.Reason, "no poll confirmed the team uplink vmnic2 after 00:16:40.500") {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no example says the last frame came after the last confirmation: %+v", r.Flows)
	}
}

// A poll that finds another uplink fails the epoch judged against the old
// one: frames that came in on vmnic2 only and were not delivered were
// "dropped after PortOutput" only if vmnic2 was still the team uplink.
func TestTeamChangedAfterJudging(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r, vs := teamRun(t, 0, []time.Duration{ms(100), ms(200), ms(700)}, func(c *Correlator, i int) {
		if i == 1 {
			local(c, t0.Add(ms(400)), 999)
			c.ConfirmTeamUplink(t0.Add(ms(500)), t0.Add(ms(501)), "vmnic3", "poll")
		}
		if i == 2 {
			c.ConfirmTeamUplink(t0.Add(ms(900)), t0.Add(ms(901)), "vmnic3", "poll")
		}
	})
	// 100 and 200 ms: judged against vmnic2 before the change was known;
	// 700 ms: after the change, vmnic3 the team uplink, confirmed at 900:
	// it came in on vmnic2 only, so filtered
	if vs[0] != Inconclusive || vs[1] != Inconclusive || vs[len(vs)-1] != FilteredReverseTeaming {
		t.Fatalf("settled %v", vs)
	}
	if r.Totals[DroppedAfterPortOutput] != 0 || r.Totals[FilteredReverseTeaming] != 1 {
		t.Errorf("totals %v", r.Totals)
	}
	if n := len(r.TeamUplinks); n != 2 || r.TeamUplinks[1].Uplink != "vmnic3" || !r.TeamUplinks[1].After.Equal(t0) {
		t.Errorf("timeline %+v", r.TeamUplinks)
	}
}

// A confirmation that arrives before a frame later than it is judged
// cannot vouch for that frame: the epoch stays open until a later poll.
func TestTeamConfirmationBeforeLaterFrame(t *testing.T) {
	t0 := time.Unix(1000, 0)
	_, vs := teamRun(t, 1, []time.Duration{ms(100), ms(600), ms(2000)}, func(c *Correlator, i int) {
		switch i {
		case 1:
			// both frames judged, then a poll at 500 ms: the 600 ms one is
			// later than it
			local(c, t0.Add(ms(700)), 999)
			c.ConfirmTeamUplink(t0.Add(ms(500)), t0.Add(ms(501)), "vmnic2", "poll")
		case 2:
			local(c, t0.Add(ms(2100)), 998)
			c.ConfirmTeamUplink(t0.Add(ms(2500)), t0.Add(ms(2501)), "vmnic2", "poll")
		}
	})
	for i, v := range vs {
		if v != FilteredReverseTeaming && v != Local {
			t.Errorf("instance %d: %v", i, v)
		}
	}
}

// Without TrackTeam the team uplink given holds throughout (analyze, with
// --team-uplink): nothing waits for a poll.
func TestTeamUntracked(t *testing.T) {
	c, _ := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"}})
	t0 := time.Unix(1000, 0)
	f := synthFrame(1)
	c.Add(pktcap.Observation{Point: 1, Time: t0, Data: f, OrigLen: 98})
	c.Add(pktcap.Observation{Point: 2, Time: t0.Add(4 * time.Microsecond), Data: f, OrigLen: 98})
	c.ConfirmTeamUplink(t0.Add(time.Second), t0.Add(time.Second), "vmnic3", "poll") // ignored: not tracked
	r := c.Close()
	if r.Totals[FilteredReverseTeaming] != 1 || len(r.TeamUplinks) != 1 {
		t.Errorf("totals %v, timeline %+v", r.Totals, r.TeamUplinks)
	}
}

// A change undone between two polls that both saw vmnic2: a frame that
// came in on vmnic3 alone and was delivered shows vmnic3 acted as the team
// uplink, so a frame that came in on vmnic2 alone and was not delivered
// may have been filtered — not "dropped after PortOutput".
func TestTeamContradictedBetweenPolls(t *testing.T) {
	c, js := tracked(t, articlePoints(), "vmnic2")
	t0 := time.Unix(1000, 0)
	in := func(at time.Time, seq uint16, points ...int) {
		f := synthFrame(seq)
		for k, p := range points {
			c.Add(pktcap.Observation{Point: p, Time: at.Add(time.Duration(k) * 4 * time.Microsecond), Data: f, OrigLen: len(f)})
		}
	}
	in(t0.Add(ms(100)), 1, 1, 2, 3) // vmnic3 alone, delivered
	in(t0.Add(ms(200)), 2, 0, 2)    // vmnic2 alone, not delivered
	local(c, t0.Add(ms(400)), 3)
	c.ConfirmTeamUplink(t0.Add(ms(500)), t0.Add(ms(501)), "vmnic2", "poll")
	in(t0.Add(ms(600)), 4, 0, 2) // after the poll: a new epoch
	local(c, t0.Add(ms(700)), 5)
	c.ConfirmTeamUplink(t0.Add(ms(900)), t0.Add(ms(901)), "vmnic2", "poll")
	r := c.Close()
	var got []Verdict
	for _, j := range *js {
		got = append(got, r.Settle(j.v, j.e))
	}
	want := []Verdict{Delivered, Inconclusive, Local, DroppedAfterPortOutput, Local}
	if len(got) != len(want) {
		t.Fatalf("settled %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("instance %d: %v; want %v", i, got[i], want[i])
		}
	}
	if r.Totals[DroppedAfterPortOutput] != 1 {
		t.Errorf("totals %v", r.Totals)
	}
}

// The oracle's seed 1823: copies from uplinks other than the polled team
// uplink, one of them delivered. Under reverse teaming that means one of
// those uplinks was the team uplink then, and the copy not delivered was
// removed by reverse teaming — not "dropped, not by reverse teaming": the
// verdict rests on the team uplink, and the frame dooms the interval.
func TestTeamContradictedByDuplicates(t *testing.T) {
	points := []Point{
		{Name: "esx02/vmnic2/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic2"},
		{Name: "esx02/vmnic3/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic3"},
		{Name: "esx02/vmnic4/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic4"},
		{Name: "esx02/50331657/PortOutput", Stage: pktcap.StagePortOutput},
		{Name: "esx02/50331657/VnicRx", Stage: pktcap.StageVnicRx},
	}
	c, js := tracked(t, points, "vmnic2")
	t0 := time.Unix(1000, 0)
	f := synthFrame(1)
	// in on vmnic3 and vmnic4, both at PortOutput, one delivered
	for k, p := range []int{1, 3, 4, 2, 3} {
		c.Add(pktcap.Observation{Point: p, Time: t0.Add(ms(100) + time.Duration(k)*4*time.Microsecond), Data: f, OrigLen: len(f)})
	}
	g := synthFrame(2) // a local frame, delivered: time moves on
	c.Add(pktcap.Observation{Point: 3, Time: t0.Add(ms(400)), Data: g, OrigLen: len(g)})
	c.Add(pktcap.Observation{Point: 4, Time: t0.Add(ms(400) + 4*time.Microsecond), Data: g, OrigLen: len(g)})
	c.ConfirmTeamUplink(t0.Add(ms(500)), t0.Add(ms(501)), "vmnic2", "poll")
	r := c.Close()
	if len(*js) == 0 || (*js)[0].v != Delivered || r.Settle((*js)[0].v, (*js)[0].e) != Inconclusive {
		t.Fatalf("judged %+v", *js)
	}
	if r.Totals[Delivered] != 0 || r.Totals[Inconclusive] != 1 {
		t.Errorf("totals %v", r.Totals)
	}
}

// The oracle's seeds 3202, 3214 and 3264: a local port's broadcast and its
// echo from an uplink, one of the two delivered. "The other dropped, not by
// reverse teaming" holds only if that uplink was the team uplink: when the
// next poll finds another, it is inconclusive.
func TestTeamChangedUnderLocalEcho(t *testing.T) {
	c, js := tracked(t, articlePoints(), "vmnic3")
	t0 := time.Unix(1000, 0)
	f := synthFrame(1)
	for k, p := range []int{2, 3, 1, 2} { // the local copy at PortOutput and VnicRx, the echo in on vmnic3 at PortOutput
		c.Add(pktcap.Observation{Point: p, Time: t0.Add(ms(100) + time.Duration(k)*4*time.Microsecond), Data: f, OrigLen: len(f)})
	}
	local(c, t0.Add(ms(400)), 2)
	c.ConfirmTeamUplink(t0.Add(ms(500)), t0.Add(ms(501)), "vmnic2", "poll")
	r := c.Close()
	if len(*js) == 0 || (*js)[0].v != Delivered || r.Settle((*js)[0].v, (*js)[0].e) != Inconclusive {
		t.Fatalf("judged %+v", *js)
	}
}
