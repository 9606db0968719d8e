package session

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

// hostSim is a host whose clock is off by offset and drifts by drift,
// answering clockScript's lines in order over a link: each line takes
// out(i) to arrive, the host takes proc(i) to answer it (after the line
// before it), and the answer takes back(i) to return (answers arrive in
// order). It returns the answers up to and including the first after a
// tick, as sshProbe.samples does, and the true offset at local time t.
type hostSim struct {
	offset          time.Duration
	drift           float64 // host seconds per local second, minus 1
	start           time.Time
	gap             func(i int) time.Duration
	out, proc, back func(i int) time.Duration
	inFlight        int
}

func (h hostSim) hostTime(local time.Time) time.Time {
	d := local.Sub(h.start)
	return h.start.Add(h.offset + d + time.Duration(float64(d)*h.drift))
}

func (h hostSim) trueOffset(local time.Time) time.Duration { return h.hostTime(local).Sub(local) }

func (h hostSim) samples() []clockSample {
	var out []clockSample
	var done, recv time.Time
	sendAt := h.start
	for i := 0; i < 100000; i++ {
		if i > 0 {
			sendAt = sendAt.Add(h.gap(i))
		}
		// the in-flight limit: no new line before the answer inFlight back
		if j := i - h.inFlight; j >= 0 && out[j].recv.After(sendAt) {
			sendAt = out[j].recv
		}
		arrive := sendAt.Add(h.out(i))
		read := arrive
		if done.After(read) {
			read = done
		}
		read = read.Add(h.proc(i))
		done = read
		r := read.Add(h.back(i))
		if recv.After(r) {
			r = recv
		}
		recv = r
		out = append(out, clockSample{sent: sendAt, recv: r, second: h.hostTime(read).Unix()})
		if n := len(out); n > 1 && out[n-1].second > out[n-2].second {
			return out
		}
	}
	panic("no tick")
}

func constant(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }

// On a steady link the reading is within half the round trip plus half
// the gap of the truth, whatever the offset, where in a second it starts
// and how the round trip splits between the two directions.
func TestClockFromSamplesSteady(t *testing.T) {
	base := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
	for _, off := range []time.Duration{0, -37 * time.Second, 2500 * time.Millisecond, 999 * time.Millisecond, -time.Nanosecond} {
		for _, rtt := range []time.Duration{200 * time.Microsecond, 5 * time.Millisecond, 150 * time.Millisecond} {
			for _, split := range []float64{0, 0.5, 1} {
				for _, start := range []time.Duration{0, 400 * time.Millisecond, 999 * time.Millisecond} {
					out := time.Duration(float64(rtt) * split)
					h := hostSim{offset: off, drift: 80e-6, start: base.Add(start), gap: constant(clockGap),
						out: constant(out), proc: constant(100 * time.Microsecond), back: constant(rtt - out), inFlight: clockInFlight}
					name := fmt.Sprintf("offset %v rtt %v split %.1f start %v", off, rtt, split, start)
					c, err := clockFromSamples(h.samples(), rtt)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if d := c.Offset - h.trueOffset(c.At); d.Abs() > c.Uncertainty {
						t.Errorf("%s: read %v ± %v, truth %v", name, c.Offset, c.Uncertainty, h.trueOffset(c.At))
					}
					// the bracket: one gap, one round trip and the host's
					// answer, and the drift allowed across it
					bracket := clockGap + rtt + 100*time.Microsecond
					if want := bracket/2 + time.Duration(float64(bracket)*MaxDrift) + 2*time.Microsecond; c.Uncertainty > want || c.RTT != rtt {
						t.Errorf("%s: uncertainty %v (rtt %v); want at most %v", name, c.Uncertainty, rtt, want)
					}
				}
			}
		}
	}
}

// A loaded host and a jittery link (answers stalled up to 300 ms, lines
// delayed, bursts of backlog) widen the bound; they never put the truth
// outside it. Seeded: the same cases every run.
func TestClockFromSamplesUnderLoad(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 168))
	base := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	jitter := func(maxd time.Duration, stall float64) func(int) time.Duration {
		return func(int) time.Duration {
			d := time.Duration(rng.Int64N(int64(maxd)))
			if rng.Float64() < stall {
				d += time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
			}
			return d
		}
	}
	for i := 0; i < 3000; i++ {
		h := hostSim{
			offset:   time.Duration(rng.Int64N(int64(80*time.Second))) - 40*time.Second,
			drift:    (rng.Float64()*2 - 1) * MaxDrift,
			start:    base.Add(time.Duration(rng.Int64N(int64(time.Hour)))),
			gap:      jitter(3*clockGap, 0.01),
			out:      jitter(time.Duration(1+rng.Int64N(int64(100*time.Millisecond))), 0.05),
			proc:     jitter(time.Duration(1+rng.Int64N(int64(20*time.Millisecond))), 0.05),
			back:     jitter(time.Duration(1+rng.Int64N(int64(100*time.Millisecond))), 0.05),
			inFlight: 1 + rng.IntN(clockInFlight),
		}
		c, err := clockFromSamples(h.samples(), 0)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if d := c.Offset - h.trueOffset(c.At); d.Abs() > c.Uncertainty {
			t.Fatalf("case %d: read %v ± %v, truth %v (off by %v)", i, c.Offset, c.Uncertainty, h.trueOffset(c.At), d)
		}
	}
}

// Answers that never tick, or that contradict each other (a clock
// stepped back mid-reading), are errors, not a clock.
func TestClockFromSamplesErrors(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	same := []clockSample{{sent: t0, recv: t0.Add(time.Millisecond), second: 100}, {sent: t0.Add(4 * time.Millisecond), recv: t0.Add(5 * time.Millisecond), second: 100}}
	if _, err := clockFromSamples(same, 0); err == nil || !strings.Contains(err.Error(), "did not tick") {
		t.Errorf("no tick: %v", err)
	}
	stepped := []clockSample{
		{sent: t0, recv: t0.Add(time.Millisecond), second: 100},
		{sent: t0.Add(4 * time.Millisecond), recv: t0.Add(5 * time.Millisecond), second: 101},
		{sent: t0.Add(8 * time.Millisecond), recv: t0.Add(9 * time.Millisecond), second: 90},
	}
	if _, err := clockFromSamples(stepped, 0); err == nil || !strings.Contains(err.Error(), "contradict") {
		t.Errorf("stepped clock: %v", err)
	}
}

// The bounds a point's start and stop get on the host's clock, and the
// drift allowance away from the reading.
func TestClockBounds(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	c := Clock{Offset: -37 * time.Second, Uncertainty: 3 * time.Millisecond, At: at}
	if got := c.Latest(at); !got.Equal(at.Add(-37*time.Second + 3*time.Millisecond)) {
		t.Errorf("Latest %v", got)
	}
	if got := c.Earliest(at); !got.Equal(at.Add(-37*time.Second - 3*time.Millisecond)) {
		t.Errorf("Earliest %v", got)
	}
	// 100 s later: 100 ppm of drift adds 10 ms
	if got := c.Bound(at.Add(100 * time.Second)); got != 13*time.Millisecond {
		t.Errorf("Bound after 100 s: %v", got)
	}
	if s := c.String(); s != "37s behind capturectl (±3ms)" {
		t.Errorf("String %q", s)
	}
	if (Clock{}).Known() || (Clock{}).String() != "not read" {
		t.Error("zero Clock")
	}
	if h, b := c.Host(time.Time{}); !h.IsZero() || b != 0 {
		t.Error("zero time")
	}
}

// Against the lab: esx02 37 s behind with 80 ppm drift behind a 150 ms
// WAN, esx01 2.5 s ahead on loopback. Each reading holds the lab's true
// offset within its uncertainty. How small the uncertainty is depends on
// the machine's load (TestClockFromSamplesSteady pins it on a steady
// link: half the round trip plus half the gap); here it is logged, and
// over the WAN it cannot be less than half the round trip.
func TestReadClockLab(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article-wan.yaml", lab.Options{NoTraffic: true})
	plan := articlePlan(t, l)
	host, port, err := l.Net.FindPort("testvm1", 0)
	if err != nil {
		t.Fatal(err)
	}
	plan.Points = append(plan.Points, DefaultPoints(host, port.PortID, []string{"vmnic2"})...)
	plan.Duration = time.Second
	s, err := Start(context.Background(), plan, Options{Dial: labDialer(t, l), Output: io.Discard, Clocks: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for host, least := range map[string]time.Duration{"esx01": 0, "esx02": 75 * time.Millisecond} {
		c, ok := r.Clocks[host]
		if !ok || !c.Known() {
			t.Fatalf("%s: clock not read: %+v", host, r.Clocks)
		}
		truth := l.Net.HostTime(host, c.At).Sub(c.At)
		t.Logf("%s: read %v ± %v (rtt %v), truth %v", host, c.Offset, c.Uncertainty, c.RTT, truth)
		if d := (c.Offset - truth).Abs(); d > c.Uncertainty {
			t.Errorf("%s: read %v ± %v; the lab's offset is %v (off by %v)", host, c.Offset, c.Uncertainty, truth, d)
		}
		if c.Uncertainty < least {
			t.Errorf("%s: uncertainty %v; a reading over a %v round trip cannot be better than %v", host, c.Uncertainty, c.RTT, least)
		}
	}
}
