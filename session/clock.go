package session

import (
	"bufio"
	"context"
	"fmt"
	"io"
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

// How a host's clock is read. `date +%s` gives whole seconds; what makes
// the reading fine is causality. capturectl sends the host one line at a
// time on a channel running clockScript, which answers each line with
// date +%s. An answer v to a line sent at local time s and received at r
// was read by the host at some local time in [s, r] (it read the line
// first, and the answer cannot arrive before it is printed), when the
// host's clock was in [v, v+1): so the offset lies in (v-r, v+1-s). The
// intersection over all answers is the estimate. Lines go every
// clockGap, pipelined, until an answer shows the next second: then the
// answer before it and the first answer after the tick bound the offset
// to the gap between their lines plus the second's round trip — about
// half the round trip plus a few milliseconds either way. Nothing is
// assumed about how fast the host answers: a loaded host or a slow link
// only widens the bound, it cannot make it wrong.
const clockScript = `while read x; do date +%s; done`

const (
	// clockGap is the spacing of the lines; the bound is at least half of it.
	clockGap = 4 * time.Millisecond
	// clockInFlight bounds the lines sent and not yet answered (a slow
	// host's backlog widens the bound without limit otherwise).
	clockInFlight = 64
	// clockWait bounds the reading: a clock ticks within a second.
	clockWait = 3 * time.Second
)

// clockSample is one answer: the host's second, the local time its line
// was sent (before the write began) and the local time the answer arrived.
type clockSample struct {
	sent, recv time.Time
	second     int64
}

// clockFromSamples intersects the answers' bounds. The host's clock may
// drift against capturectl's by MaxDrift while the reading lasts, so each
// answer's bound is widened by the drift between it and At, the middle of
// the tick's bracket. It needs an answer on each side of a tick.
func clockFromSamples(samples []clockSample, rtt time.Duration) (Clock, error) {
	tick := -1
	for i := 1; i < len(samples); i++ {
		if samples[i].second > samples[i-1].second {
			tick = i
			break
		}
	}
	if tick < 0 {
		return Clock{}, fmt.Errorf("the host's clock did not tick in %d answers", len(samples))
	}
	at := samples[tick-1].sent.Add(samples[tick].recv.Sub(samples[tick-1].sent) / 2)
	drift := func(t time.Time) time.Duration {
		d := t.Sub(at).Abs()
		return time.Duration(float64(d)*MaxDrift) + 1
	}
	var lo, hi time.Duration
	for i, c := range samples {
		l := time.Unix(c.second, 0).Sub(c.recv) - drift(c.recv)
		h := time.Unix(c.second+1, 0).Sub(c.sent) + drift(c.sent)
		if i == 0 || l > lo {
			lo = l
		}
		if i == 0 || h < hi {
			hi = h
		}
	}
	if lo > hi {
		return Clock{}, fmt.Errorf("the host's clock answers contradict each other (%v > %v): did its clock step while it was read?", lo, hi)
	}
	return Clock{Offset: lo + (hi-lo)/2, Uncertainty: (hi - lo + 1) / 2, At: at, RTT: rtt}, nil
}

// clockProbe is how a clock is read: the SSH round trip (reported with the
// clock), and the answers of a clockScript channel.
type clockProbe interface {
	roundTrip(ctx context.Context) (time.Duration, error)
	samples(ctx context.Context) ([]clockSample, error)
}

// readClock reads a host's clock through p.
func readClock(ctx context.Context, p clockProbe) (Clock, error) {
	rtt, err := p.roundTrip(ctx)
	if err != nil {
		return Clock{}, err
	}
	samples, err := p.samples(ctx)
	if err != nil {
		return Clock{}, err
	}
	after, err := p.roundTrip(ctx)
	if err != nil {
		return Clock{}, err
	}
	return clockFromSamples(samples, max(rtt, after))
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

// samples runs clockScript on the host and sends it a line every clockGap
// (at most clockInFlight unanswered) until an answer shows a tick.
func (p sshProbe) samples(ctx context.Context) ([]clockSample, error) {
	c, err := p.h.conn(ctx)
	if err != nil {
		return nil, err
	}
	p.h.ctl.Lock()
	defer p.h.ctl.Unlock()
	ctx, cancel := context.WithTimeout(ctx, clockWait)
	defer cancel()
	sess, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := sess.Start(clockScript); err != nil {
		return nil, fmt.Errorf("the host's clock: start %q: %w", clockScript, err)
	}
	type answer struct {
		line string
		recv time.Time
		err  error
	}
	answers := make(chan answer, clockInFlight+1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			answers <- answer{line: sc.Text(), recv: time.Now()}
		}
		err := sc.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		answers <- answer{err: err}
	}()
	tick := time.NewTicker(clockGap)
	defer tick.Stop()
	var sent []time.Time // lines not yet answered, oldest first
	var out []clockSample
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the host's clock did not tick within %v (%d answers)", clockWait, len(out))
		case <-tick.C:
			if len(sent) >= clockInFlight {
				continue
			}
			t := time.Now()
			if _, err := io.WriteString(stdin, "\n"); err != nil {
				return nil, fmt.Errorf("the host's clock: write: %w", err)
			}
			sent = append(sent, t)
		case a := <-answers:
			if a.err != nil {
				return nil, fmt.Errorf("the host's clock: %q ended: %w", clockScript, a.err)
			}
			v, err := strconv.ParseInt(strings.TrimSpace(a.line), 10, 64)
			if err != nil || len(sent) == 0 {
				return nil, fmt.Errorf("the host's clock: %q is not an answer of date +%%s", a.line)
			}
			out = append(out, clockSample{sent: sent[0], recv: a.recv, second: v})
			sent = sent[1:]
			if n := len(out); n > 1 && out[n-1].second > out[n-2].second {
				_ = stdin.Close()
				return out, nil
			}
		}
	}
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
