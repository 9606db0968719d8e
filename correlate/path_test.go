package correlate

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

var (
	macA = net.HardwareAddr{0x00, 0x50, 0x56, 0x9d, 0x43, 0x42}
	macB = net.HardwareAddr{0x00, 0x50, 0x56, 0x9d, 0xfd, 0xb1}
)

// echo is an ICMP echo request (reply: false) or reply between A and B.
func echo(reply bool, seq uint16) []byte {
	f := make([]byte, 98)
	src, dst := macA, macB
	sip, dip := []byte{192, 168, 100, 11}, []byte{192, 168, 100, 12}
	typ := byte(8)
	if reply {
		src, dst, sip, dip, typ = macB, macA, dip, sip, 0
	}
	copy(f[0:], dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	f[14], f[23] = 0x45, 1
	copy(f[26:], sip)
	copy(f[30:], dip)
	f[34] = typ
	binary.BigEndian.PutUint16(f[40:], seq)
	return f
}

// twoHostPoints: esx01 (A) and esx02 (B), two uplinks each, the plan
// trace.PathPlan builds.
func twoHostPoints() []PathPoint {
	var pts []PathPoint
	add := func(host, name string, stage pktcap.Stage, uplink string, end int) {
		pts = append(pts, PathPoint{Name: host + "/" + name, Host: host, Stage: stage, Uplink: uplink, End: end})
	}
	for _, h := range []struct {
		host string
		end  int
	}{{"esx01", 0}, {"esx02", 1}} {
		add(h.host, "p/VnicTx", pktcap.StageVnicTx, "", h.end)
		add(h.host, "p/PortInput", pktcap.StagePortInput, "", h.end)
		for _, u := range []string{"vmnic2", "vmnic3"} {
			add(h.host, u+"/UplinkSnd", pktcap.StageUplinkTx, u, -1)
			add(h.host, u+"/rx", pktcap.StageUplinkRx, u, -1)
		}
		add(h.host, "p/PortOutput", pktcap.StagePortOutput, "", h.end)
		add(h.host, "p/VnicRx", pktcap.StageVnicRx, "", h.end)
	}
	return pts
}

func pointIndex(t *testing.T, pts []PathPoint, name string) int {
	for i, p := range pts {
		if p.Name == name {
			return i
		}
	}
	t.Fatalf("no point %s", name)
	return -1
}

type pathSight struct {
	point string
	at    time.Duration
}

func newPathTest(t *testing.T, mod func(*PathConfig)) (*PathCorrelator, []PathPoint) {
	t.Helper()
	pts := twoHostPoints()
	cfg := PathConfig{Points: pts,
		A:     End{Host: "esx01", Port: Port{Name: "testvm1 eth0", MAC: macA, TeamUplink: "vmnic2"}},
		B:     End{Host: "esx02", Port: Port{Name: "testvm2 eth0", MAC: macB, TeamUplink: "vmnic2"}},
		Clock: map[string]time.Duration{"esx01": time.Millisecond, "esx02": time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewPath(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, pts
}

// feed adds frames: each a frame and its sightings (relative to t0);
// sightings across frames must be given in time order overall.
func feed(t *testing.T, c *PathCorrelator, pts []PathPoint, frames []struct {
	data   []byte
	sights []pathSight
}) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []pktcap.Observation
	for _, f := range frames {
		for _, s := range f.sights {
			all = append(all, pktcap.Observation{Point: pointIndex(t, pts, s.point), Time: t0.Add(s.at), Data: f.data, OrigLen: len(f.data)})
		}
	}
	// in time order
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].Time.Before(all[j-1].Time); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	for _, o := range all {
		c.Add(o)
	}
}

type pframe = struct {
	data   []byte
	sights []pathSight
}

// request is an echo request sent at at, leaving A on uplink and arriving
// at B on arrive ("" lost), delivered when deliver.
func request(seq uint16, at time.Duration, uplink, arrive string, deliver bool) pframe {
	s := []pathSight{{"esx01/p/VnicTx", at}, {"esx01/p/PortInput", at + 10*time.Microsecond}}
	if uplink != "" {
		s = append(s, pathSight{"esx01/" + uplink + "/UplinkSnd", at + 20*time.Microsecond})
	}
	if arrive != "" {
		// B's clock 300µs behind after the offsets were removed
		s = append(s, pathSight{"esx02/" + arrive + "/rx", at + 100*time.Microsecond - 300*time.Microsecond + 400*time.Microsecond},
			pathSight{"esx02/p/PortOutput", at + 210*time.Microsecond})
		if deliver {
			s = append(s, pathSight{"esx02/p/VnicRx", at + 220*time.Microsecond})
		}
	}
	return pframe{echo(false, seq), s}
}

func reply(seq uint16, at time.Duration, lost bool) pframe {
	s := []pathSight{{"esx02/p/VnicTx", at}, {"esx02/p/PortInput", at + 10*time.Microsecond},
		{"esx02/vmnic2/UplinkSnd", at + 20*time.Microsecond}}
	if !lost {
		s = append(s, pathSight{"esx01/vmnic2/rx", at + 120*time.Microsecond},
			pathSight{"esx01/p/PortOutput", at + 130*time.Microsecond}, pathSight{"esx01/p/VnicRx", at + 140*time.Microsecond})
	}
	return pframe{echo(true, seq), s}
}

func flowOfDir(t *testing.T, r *PathResult, dir Direction) *PathFlow {
	t.Helper()
	for _, f := range r.Flows {
		if f.Direction == dir {
			return f
		}
	}
	t.Fatalf("no flow %v in %d flows", dir, len(r.Flows))
	return nil
}

// Requests every 10 ms: odd ones lost between the hosts, the rest
// delivered; every delivered request answered. Lost ones are
// lost_in_network, the rest delivered, the replies delivered; the clock
// alignment holds the true residual and cross-host latencies carry its
// uncertainty.
func TestPathLostInNetwork(t *testing.T) {
	c, pts := newPathTest(t, nil)
	var frames []pframe
	for i := range 20 {
		at := time.Duration(i) * 10 * time.Millisecond
		lost := i%2 == 1
		arrive := "vmnic2"
		if lost {
			arrive = ""
		}
		frames = append(frames, request(uint16(i), at, "vmnic2", arrive, true))
		if !lost {
			frames = append(frames, reply(uint16(i), at+time.Millisecond, false))
		}
	}
	feed(t, c, pts, frames)
	r := c.Close()
	req, rep := flowOfDir(t, r, AtoB), flowOfDir(t, r, BtoA)
	if req.Counts[PathLostInNetwork] != 10 || req.Counts[PathDelivered] != 10 || req.Counts[PathFiltered] != 0 {
		t.Errorf("requests: %v; want 10 lost_in_network and 10 delivered", req.Counts.ByID())
	}
	if rep.Counts[PathDelivered] != 10 || rep.Counts[PathLostInNetwork] != 0 {
		t.Errorf("replies: %v; want 10 delivered", rep.Counts.ByID())
	}
	for _, e := range req.Examples {
		if e.Verdict == PathLostInNetwork && !strings.Contains(e.Reason, "left esx01 on vmnic2 at") {
			t.Errorf("reason %q", e.Reason)
		}
	}
	// the frames' true residual: the request's B sighting is at +200µs of
	// its UplinkSnd at +20µs on the fed timeline; the reply takes 100µs
	// back. Every bound holds the truth: the estimate must bracket any
	// residual consistent with positive transit both ways.
	ck := r.Clock
	if !ck.FromFrames || ck.Inconsistent || ck.Requests != 10 || ck.Replies != 10 {
		t.Fatalf("clock: %+v", ck)
	}
	lo, hi := ck.Residual-ck.Uncertainty, ck.Residual+ck.Uncertainty
	// upper bound: t_B - t_A = 180µs - ...; lower bound: -(100µs)
	if lo > -100*time.Microsecond+time.Microsecond || hi < 180*time.Microsecond-time.Microsecond {
		t.Errorf("clock %v ± %v does not span [-100µs, 180µs]", ck.Residual, ck.Uncertainty)
	}
	var cross *Hop
	for i, h := range req.Hops {
		if h.CrossHost {
			cross = &req.Hops[i]
		}
	}
	if cross == nil || cross.Frames != 10 || cross.Latency.Uncertainty == 0 || cross.Latency.Unknown {
		t.Fatalf("cross-host hop: %+v (hops %+v)", cross, req.Hops)
	}
	// true transit (B sighting - A sighting - residual) lies within the
	// figure ± its uncertainty for any residual in the interval
	if d := cross.Latency.P50; d-cross.Latency.Uncertainty > 180*time.Microsecond || d+cross.Latency.Uncertainty < 0 {
		t.Errorf("cross-host latency %v ± %v", d, cross.Latency.Uncertainty)
	}
}

// A verdict that rests on a point not seeing the frame becomes
// inconclusive when that point dropped; a delivered frame stays
// delivered.
func TestPathDropsMakeLostInconclusive(t *testing.T) {
	c, pts := newPathTest(t, nil)
	feed(t, c, pts, []pframe{request(1, 0, "vmnic2", "", false), request(2, 10*time.Millisecond, "vmnic2", "vmnic2", true)})
	c.SetDropped(pointIndex(t, pts, "esx02/vmnic3/rx"), 1)
	r := c.Close()
	f := flowOfDir(t, r, AtoB)
	if f.Counts[PathLostInNetwork] != 0 || f.Counts[PathInconclusive] != 1 || f.Counts[PathDelivered] != 1 {
		t.Errorf("%v; want the lost one inconclusive (esx02/vmnic3/rx dropped), the other delivered", f.Counts.ByID())
	}
}

// Frames from A reach B without being seen leaving A (the streams do not
// line up): no frame is called lost in the network.
func TestPathOrphansBlockLost(t *testing.T) {
	c, pts := newPathTest(t, nil)
	orphan := pframe{echo(false, 7), []pathSight{{"esx02/vmnic2/rx", 5 * time.Millisecond}, {"esx02/p/PortOutput", 5*time.Millisecond + 10*time.Microsecond},
		{"esx02/p/VnicRx", 5*time.Millisecond + 20*time.Microsecond}}}
	feed(t, c, pts, []pframe{request(1, 0, "vmnic2", "", false), orphan})
	r := c.Close()
	f := flowOfDir(t, r, AtoB)
	if r.Orphans[AtoB] != 1 || f.Counts[PathLostInNetwork] != 0 || f.Counts[PathInconclusive] != 1 {
		t.Errorf("orphans %d, %v", r.Orphans[AtoB], f.Counts.ByID())
	}
}

// Clocks too uncertain, or frames that contradict each other about them:
// lost_in_network is never concluded.
func TestPathClocks(t *testing.T) {
	c, pts := newPathTest(t, func(cfg *PathConfig) {
		cfg.Clock = map[string]time.Duration{"esx01": 200 * time.Millisecond, "esx02": 200 * time.Millisecond}
	})
	feed(t, c, pts, []pframe{request(1, 0, "vmnic2", "", false)})
	if f := flowOfDir(t, c.Close(), AtoB); f.Counts[PathLostInNetwork] != 0 || f.Counts[PathInconclusive] != 1 {
		t.Errorf("uncertain clocks: %v", f.Counts.ByID())
	}
	// esx02 unread
	c, pts = newPathTest(t, func(cfg *PathConfig) { cfg.Clock = map[string]time.Duration{"esx01": time.Millisecond} })
	feed(t, c, pts, []pframe{request(1, 0, "vmnic2", "", false)})
	if r := c.Close(); !r.Clock.Inconsistent || flowOfDir(t, r, AtoB).Counts[PathLostInNetwork] != 0 {
		t.Errorf("unread clock: %+v %v", r.Clock, flowOfDir(t, r, AtoB).Counts.ByID())
	}
	// a reply that "arrives" 2 ms before it left (a clock stepped)
	c, pts = newPathTest(t, nil)
	bad := pframe{echo(true, 9), []pathSight{{"esx02/p/VnicTx", 20 * time.Millisecond}, {"esx02/vmnic2/UplinkSnd", 20*time.Millisecond + 10*time.Microsecond},
		{"esx01/vmnic2/rx", 18 * time.Millisecond}, {"esx01/p/VnicRx", 18*time.Millisecond + 10*time.Microsecond}}}
	feed(t, c, pts, []pframe{request(1, 0, "vmnic2", "vmnic2", true), request(2, 10*time.Millisecond, "vmnic2", "", false), bad})
	r := c.Close()
	if !r.Clock.Inconsistent || flowOfDir(t, r, AtoB).Counts[PathLostInNetwork] != 0 {
		t.Errorf("contradicting frames: %+v %v", r.Clock, flowOfDir(t, r, AtoB).Counts.ByID())
	}
	for _, h := range flowOfDir(t, r, AtoB).Hops {
		if h.CrossHost && !h.Latency.Unknown {
			t.Errorf("cross-host latency given with inconsistent clocks: %+v", h)
		}
	}
}

// Filtered at the receiver (arrived on vmnic3 only, team vmnic2); not
// sent (seen at VnicTx only); sent on an uplink that is not the team
// uplink: an annotation on a delivered verdict.
func TestPathVerdicts(t *testing.T) {
	c, pts := newPathTest(t, nil)
	notSent := pframe{echo(false, 3), []pathSight{{"esx01/p/VnicTx", 20 * time.Millisecond}, {"esx01/p/PortInput", 20*time.Millisecond + 5*time.Microsecond}}}
	feed(t, c, pts, []pframe{request(1, 0, "vmnic2", "vmnic3", false), request(2, 10*time.Millisecond, "vmnic3", "vmnic2", true), notSent})
	r := c.Close()
	f := flowOfDir(t, r, AtoB)
	if f.Counts[PathFiltered] != 1 || f.Counts[PathDelivered] != 1 || f.Counts[PathNotSent] != 1 {
		t.Errorf("%v; want one each of filtered, delivered, not_sent", f.Counts.ByID())
	}
	if f.OffTeam["vmnic3"] != 1 {
		t.Errorf("off-team annotation: %v", f.OffTeam)
	}
	for _, e := range f.Examples {
		switch e.Verdict {
		case PathFiltered:
			if !strings.Contains(e.Reason, "at esx02: arrived on vmnic3") {
				t.Errorf("filtered: %q", e.Reason)
			}
		case PathNotSent:
			if !strings.Contains(e.Reason, "last seen at esx01/p/PortInput") {
				t.Errorf("not sent: %q", e.Reason)
			}
		case PathDelivered:
			if !e.OffTeam || !strings.Contains(e.Reason, "not testvm1 eth0's team uplink vmnic2") {
				t.Errorf("delivered: %+v", e)
			}
		}
	}
}

// BenchmarkPathCorrelate: the path correlator over two hosts × 8 points,
// each echo request seen at A's VnicTx, PortInput and UplinkSnd and at
// B's uplink, PortOutput and VnicRx (6 observations a frame, 1 µs
// apart), frames 10 µs apart (100,000 frames/s, 600,000 observations/s):
// observations per second of one core.
func BenchmarkPathCorrelate(b *testing.B) {
	pts := twoHostPoints()
	c, err := NewPath(PathConfig{Points: pts,
		A:     End{Host: "esx01", Port: Port{Name: "a", MAC: macA, TeamUplink: "vmnic2"}},
		B:     End{Host: "esx02", Port: Port{Name: "b", MAC: macB, TeamUplink: "vmnic2"}},
		Clock: map[string]time.Duration{"esx01": time.Millisecond, "esx02": time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	idx := func(n string) int {
		for i, p := range pts {
			if p.Name == n {
				return i
			}
		}
		b.Fatal(n)
		return 0
	}
	path := [6]int{idx("esx01/p/VnicTx"), idx("esx01/p/PortInput"), idx("esx01/vmnic2/UplinkSnd"),
		idx("esx02/vmnic2/rx"), idx("esx02/p/PortOutput"), idx("esx02/p/VnicRx")}
	frames := make([][]byte, 65536)
	for i := range frames {
		frames[i] = echo(false, uint16(i))
	}
	keyer := c.Keyer()
	keys := make([]Key, len(frames))
	for i, f := range frames {
		keys[i] = keyer(f, len(f))
	}
	t0 := time.Unix(1000, 0).UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	// observation i: frame i/6 at hop i%6, in time order
	for i := 0; i < b.N; i++ {
		f, h := i/6, i%6
		ns := t0 + int64(f)*10_000 + int64(h)*1_000
		c.AddKeyed(path[h], ns, keys[f%len(keys)], frames[f%len(frames)])
	}
	r := c.Close()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	if b.N >= 6 && r.Totals[AtoB][PathDelivered] < b.N/6-1 {
		b.Fatalf("%d frames, verdicts %v: want every one delivered", b.N/6, r.Totals[AtoB].ByID())
	}
}

// A host's clock steps during the trace: the requests A sent after it
// are seen at B 2.5 s later on the aligned timeline, outside any group
// window. They did arrive, so none is called lost in the network.
func TestPathClockStepNotLost(t *testing.T) {
	c, pts := newPathTest(t, nil)
	var frames []pframe
	for i := range 10 {
		at := time.Duration(i) * 20 * time.Millisecond
		f := request(uint16(i), at, "vmnic2", "", false)
		// B's sightings, stamped 2.5 s late
		f.sights = append(f.sights, pathSight{"esx02/vmnic2/rx", at + 2500*time.Millisecond},
			pathSight{"esx02/p/PortOutput", at + 2500*time.Millisecond + 10*time.Microsecond},
			pathSight{"esx02/p/VnicRx", at + 2500*time.Millisecond + 20*time.Microsecond})
		frames = append(frames, f)
	}
	feed(t, c, pts, frames)
	r := c.Close()
	if f := flowOfDir(t, r, AtoB); f.Counts[PathLostInNetwork] != 0 || r.Misplaced[AtoB] != 10 {
		t.Errorf("%v, misplaced %d; want no lost_in_network, 10 misplaced", f.Counts.ByID(), r.Misplaced[AtoB])
	}
}

// A frame from A to a third station's address is not on the path: not
// judged (it would otherwise be "lost in the network").
func TestPathThirdStationNotJudged(t *testing.T) {
	c, pts := newPathTest(t, nil)
	f := request(1, 0, "vmnic2", "", false)
	copy(f.data[0:6], []byte{0x00, 0x1b, 0x21, 0, 0, 9})
	feed(t, c, pts, []pframe{f})
	r := c.Close()
	if r.Other != 1 || len(r.Flows) != 0 {
		t.Errorf("other %d, flows %d; want the frame not judged", r.Other, len(r.Flows))
	}
}
