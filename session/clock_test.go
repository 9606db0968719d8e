package session

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// fakeClock is a host whose clock is off by offset, reached over a link
// whose one-way delays are out and back, and whose tick loop prints a new
// second slack after it begins.
type fakeClock struct {
	local          time.Time // capturectl's clock, advanced by the probe
	offset         time.Duration
	out, back      time.Duration
	slack          time.Duration
	ticks, samples int
}

func (f *fakeClock) roundTrip(context.Context) (time.Duration, error) {
	f.samples++
	f.local = f.local.Add(f.out + f.back)
	return f.out + f.back, nil
}

func (f *fakeClock) tick(context.Context) (int64, time.Time, time.Time, error) {
	f.ticks++
	sent := f.local
	host := sent.Add(f.out).Add(f.offset)
	next := host.Truncate(time.Second).Add(time.Second)
	printed := next.Add(f.slack).Add(-f.offset) // local time of the print
	f.local = printed.Add(f.back)
	return next.Unix(), sent, f.local, nil
}

// The offset read lies within its uncertainty of the true one whatever
// the split of the round trip between the two directions and however
// late in its slack the loop saw the tick; the uncertainty is half the
// round trip plus half the slack bound.
func TestReadClockBounds(t *testing.T) {
	base := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
	for _, off := range []time.Duration{0, -37 * time.Second, 2500 * time.Millisecond, 999 * time.Millisecond, -time.Nanosecond} {
		for _, rtt := range []time.Duration{200 * time.Microsecond, 5 * time.Millisecond, 150 * time.Millisecond} {
			for _, split := range []float64{0, 0.5, 1} {
				for _, slack := range []time.Duration{0, tickSlack / 2, tickSlack} {
					for _, start := range []time.Duration{0, 400 * time.Millisecond, 999 * time.Millisecond} {
						out := time.Duration(float64(rtt) * split)
						f := &fakeClock{local: base.Add(start), offset: off, out: out, back: rtt - out, slack: slack}
						c, err := readClock(context.Background(), f)
						name := fmt.Sprintf("offset %v rtt %v split %.1f slack %v start %v", off, rtt, split, slack, start)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if d := c.Offset - off; math.Abs(float64(d)) > float64(c.Uncertainty) {
							t.Errorf("%s: read %v ± %v", name, c.Offset, c.Uncertainty)
						}
						if want := (rtt + tickSlack) / 2; c.Uncertainty > want+time.Nanosecond || c.RTT != rtt {
							t.Errorf("%s: uncertainty %v (rtt %v); want %v", name, c.Uncertainty, c.RTT, want)
						}
						if f.ticks != 1 || f.samples != 3 {
							t.Errorf("%s: %d ticks, %d round trips", name, f.ticks, f.samples)
						}
					}
				}
			}
		}
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
