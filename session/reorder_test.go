package session

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

type collected struct {
	obs []pktcap.Observation
}

func (c *collected) write(o pktcap.Observation) error {
	o.Data = append([]byte(nil), o.Data...)
	c.obs = append(c.obs, o)
	return nil
}

func (c *collected) sorted() bool {
	for i := 1; i < len(c.obs); i++ {
		if c.obs[i].Time.Before(c.obs[i-1].Time) {
			return false
		}
	}
	return true
}

// Four points' streams, each in its own time order but for one frame in
// twenty swapped with the one before, arriving interleaved
// in bursts with each stream up to 80 ms behind the others: written in
// time order, every frame once, none late.
func TestReorderInterleaved(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 14))
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const points, per = 4, 5000
	streams := make([][]pktcap.Observation, points)
	for p := range streams {
		at := t0
		for i := range per {
			at = at.Add(time.Duration(1+rng.IntN(40)) * time.Microsecond)
			streams[p] = append(streams[p], pktcap.Observation{Point: p, Time: at, Data: []byte{byte(p), byte(i), byte(i >> 8)}, VLAN: -1})
		}
		// a stream a little out of its own order now and then (two
		// uplinks' copies reaching PortOutput from two threads)
		for i := 1; i < per; i++ {
			if rng.IntN(20) == 0 {
				st := streams[p]
				st[i-1].Time, st[i].Time = st[i].Time, st[i-1].Time
			}
		}
	}
	var c collected
	r := newReorder(points, c.write)
	next := make([]int, points)
	// arrival: the stream whose next frame is earliest minus a lag of up to
	// 80 ms of its own goes next, in bursts
	lag := []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond, 80 * time.Millisecond}
	for {
		best := -1
		for p := range streams {
			if next[p] < per && (best < 0 || streams[p][next[p]].Time.Add(-lag[p]).Before(streams[best][next[best]].Time.Add(-lag[best]))) {
				best = p
			}
		}
		if best < 0 {
			break
		}
		for k := 0; k < 1+rng.IntN(20) && next[best] < per; k++ {
			if err := r.push(streams[best][next[best]]); err != nil {
				t.Fatal(err)
			}
			next[best]++
		}
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.obs) != points*per || !c.sorted() || r.Late != 0 || r.Forced != 0 {
		t.Fatalf("%d of %d frames written, sorted %v, late %d, forced %d", len(c.obs), points*per, c.sorted(), r.Late, r.Forced)
	}
	seen := map[[3]byte]bool{}
	for _, o := range c.obs {
		seen[[3]byte(o.Data)] = true
	}
	if len(seen) != points*per {
		t.Errorf("%d distinct frames; want %d", len(seen), points*per)
	}
}

// A frame waits until every streaming point has passed it; one earlier
// than what was written goes out when it comes, counted; a point that went
// quiet is not waited for; no frame waits more than reorderMaxWait behind
// the latest; past the memory limit the earliest goes out at once.
func TestReorderBounds(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	obs := func(p int, d time.Duration, n int) pktcap.Observation {
		return pktcap.Observation{Point: p, Time: t0.Add(d), Data: make([]byte, n), VLAN: -1}
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var c collected
	r := newReorder(2, c.write)
	r.push(obs(0, 0, 60))
	r.push(obs(1, ms(10), 60))
	r.push(obs(0, ms(20), 60))
	r.push(obs(1, ms(30), 60))
	// both points passed 19 ms (a point passes what is disorderSlack older
	// than its latest)
	if len(c.obs) != 2 {
		t.Fatalf("%d written; want the two both points passed", len(c.obs))
	}
	r.push(obs(1, ms(5), 60)) // earlier than what was written
	if len(c.obs) != 3 || r.Late != 1 {
		t.Fatalf("late frame: %d written, late %d", len(c.obs), r.Late)
	}
	for range quietTicks - 1 {
		r.tick()
	}
	if len(c.obs) != 3 {
		t.Fatalf("%d written before the points went quiet", len(c.obs))
	}
	r.tick()
	if len(c.obs) != 5 {
		t.Fatalf("quiet: %d written; want the 20 and 30 ms frames out", len(c.obs))
	}
	// point 1 lags at 35 ms while point 0 runs on to 1100 ms: what is
	// reorderMaxWait behind the latest goes
	r.push(obs(1, ms(35), 60))
	for d := 40; d <= 1100; d += 10 {
		r.push(obs(0, ms(d), 60))
	}
	if want := 5 + 1 + 7; len(c.obs) != want { // 35 ms, and 40..100 ms
		t.Fatalf("lagging point: %d written; want %d", len(c.obs), want)
	}
	for i := range reorderLimit/(1<<16) + 1 {
		r.push(obs(1, ms(1200)+time.Duration(i)*time.Microsecond, 1<<16))
	}
	if r.Forced == 0 || r.bytes > reorderLimit {
		t.Errorf("past the limit: forced %d, %d bytes held", r.Forced, r.bytes)
	}
	r.flush()
	if r.bytes != 0 || r.heads.Len() != 0 || !c.sorted() && r.Late == 0 {
		t.Errorf("after flush: %d bytes, %d points held", r.bytes, r.heads.Len())
	}
}
