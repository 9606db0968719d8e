package session

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Host clocks. pktcap-uw stamps frames with the host's clock; capturectl
// sees a point start and stop, and polls the team uplink, on its own.
// ESXi hosts without NTP are often seconds off, so every local time is put
// on the host's clock before it is compared with frame times, widened by
// how well the offset is known.

// Clock is what is known of a host's clock: host time = local time +
// Offset, to within ±Uncertainty at At (local time). Away from At the
// uncertainty grows by MaxDrift.
type Clock struct {
	Offset      time.Duration
	Uncertainty time.Duration
	At          time.Time
	// RTT is the round trip of the SSH connection it was read over.
	RTT time.Duration
}

// MaxDrift bounds how fast a host's clock may run against capturectl's
// (100 ppm, twice a typical crystal's tolerance; NTP refuses worse):
// Clock.Bound adds it for the time since the clock was read.
const MaxDrift = 100e-6

// tickSlack bounds how late the host's tick loop sees a new second: one
// iteration of the loop (a fork and exec of date in busybox ash, about a
// millisecond on ESXi) plus the echo; 10 ms leaves room for a busy host.
const tickSlack = 10 * time.Millisecond

// Known reports whether the clock was read.
func (c Clock) Known() bool { return !c.At.IsZero() }

// Bound is the uncertainty of the offset at local time t.
func (c Clock) Bound(t time.Time) time.Duration {
	d := t.Sub(c.At)
	if d < 0 {
		d = -d
	}
	return c.Uncertainty + time.Duration(float64(d)*MaxDrift)
}

// Host puts local time t on the host's clock: the estimate, and the bound
// of its error.
func (c Clock) Host(t time.Time) (time.Time, time.Duration) {
	if t.IsZero() {
		return t, 0
	}
	return t.Add(c.Offset), c.Bound(t)
}

// Earliest and Latest are the bounds of local time t on the host's
// clock: a point that started at t was capturing from Latest(t) at the
// latest; one that stopped at t until Earliest(t) at the earliest.
func (c Clock) Earliest(t time.Time) time.Time {
	h, b := c.Host(t)
	return h.Add(-b)
}

// Latest: see Earliest.
func (c Clock) Latest(t time.Time) time.Time {
	h, b := c.Host(t)
	return h.Add(b)
}

// String says the offset the way a person reads it.
func (c Clock) String() string {
	if !c.Known() {
		return "not read"
	}
	side := "ahead of"
	off := c.Offset
	if off < 0 {
		side, off = "behind", -off
	}
	return fmt.Sprintf("%s %s capturectl (±%s)", round(off), side, round(c.Uncertainty))
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// tickScript waits on the host until its clock's second changes and prints
// the second it started in and the new one: the new one printed at most
// tickSlack after the host's clock read it. The caller bounds it in time
// (a clock that does not tick); the loop ends with its channel.
const tickScript = `s=$(date +%s); n=$s; while [ "$n" = "$s" ]; do n=$(date +%s); done; echo $s $n`

// clockProbe is how a clock is read: the SSH round trip, and a run of
// tickScript with the local times of its start and its output's arrival.
type clockProbe interface {
	roundTrip(ctx context.Context) (time.Duration, error)
	tick(ctx context.Context) (second int64, sent, received time.Time, err error)
}

// readClock reads a host's clock. The host printed second N at a host time
// in [N, N+tickSlack]; the output left it at a local time in [received-RTT,
// received] (its one-way delay is at most the round trip); so the offset
// lies in [N-received, N+tickSlack-received+RTT]: the middle, ± half the
// width. RTT is the largest of three SSH request-replies around the tick,
// so that jitter widens the bound instead of breaking it.
func readClock(ctx context.Context, p clockProbe) (Clock, error) {
	var rtt time.Duration
	sample := func() error {
		d, err := p.roundTrip(ctx)
		rtt = max(rtt, d)
		return err
	}
	if err := sample(); err != nil {
		return Clock{}, err
	}
	if err := sample(); err != nil {
		return Clock{}, err
	}
	n, sent, recv, err := p.tick(ctx)
	if err != nil {
		return Clock{}, err
	}
	if err := sample(); err != nil {
		return Clock{}, err
	}
	if recv.Sub(sent) > 3*time.Second+3*rtt {
		// the loop cannot have waited for a tick that long: the second
		// printed is not the one just begun
		return Clock{}, fmt.Errorf("the host's clock did not tick within %v", recv.Sub(sent).Round(time.Millisecond))
	}
	lo := time.Unix(n, 0).Sub(recv)
	hi := lo + tickSlack + rtt
	return Clock{Offset: (lo + hi) / 2, Uncertainty: (hi - lo + 1) / 2, At: recv, RTT: rtt}, nil
}

// sshProbe reads a host's clock over the session's connection to it.
type sshProbe struct{ h *hostConn }

func (p sshProbe) roundTrip(ctx context.Context) (time.Duration, error) {
	c, err := p.h.conn(ctx)
	if err != nil {
		return 0, err
	}
	return c.RoundTrip(ctx)
}

func (p sshProbe) tick(ctx context.Context) (int64, time.Time, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sent := time.Now()
	out, err := p.h.run(ctx, tickScript)
	recv := time.Now()
	if err != nil {
		return 0, sent, recv, err
	}
	f := strings.Fields(out)
	var s, n int64
	if len(f) == 2 {
		s, err = strconv.ParseInt(f[0], 10, 64)
		if err == nil {
			n, err = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if len(f) != 2 || err != nil || n <= s {
		return 0, sent, recv, fmt.Errorf("the host's clock: %q is not two seconds of date +%%s, the second later", strings.TrimSpace(out))
	}
	return n, sent, recv, nil
}

// readClock reads the host's clock (Options.Clocks).
func (h *hostConn) readClock(ctx context.Context) error {
	c, err := readClock(ctx, sshProbe{h})
	if err != nil {
		return fmt.Errorf("session: host %s: read its clock: %w", h.name, err)
	}
	h.clockMu.Lock()
	h.hostClock = c
	h.clockMu.Unlock()
	h.log.Debug("host clock", "offset", c.Offset, "uncertainty", c.Uncertainty, "rtt", c.RTT)
	return nil
}

// Clock returns what is known of host's clock (not Known when
// Options.Clocks is off or the host is not in the plan).
func (s *Session) Clock(host string) Clock {
	h := s.hosts[host]
	if h == nil {
		return Clock{}
	}
	h.clockMu.Lock()
	defer h.clockMu.Unlock()
	return h.hostClock
}
