package lab

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/capturectl/capturectl/lab/internal/sshsrv"
)

// The lab's adversity knobs (DESIGN.md §7): host clocks, capture drop
// bursts, loss on physical switch ports, and (in Lab) the management
// links. Each is set from the topology and changeable at run time.

// hostClock is a host's clock against the lab's: at lab time t it reads
// t + off + drift·(t − anchor). It is read without the network lock (the
// shell's date) and replaced whole.
type hostClock struct{ p atomic.Pointer[clockParams] }

type clockParams struct {
	off    time.Duration
	drift  float64 // fraction, 80 ppm = 80e-6
	anchor time.Time
}

func (c *hostClock) at(t time.Time) time.Time {
	p := c.p.Load()
	if p == nil || t.IsZero() {
		return t
	}
	return t.Add(p.off + time.Duration(p.drift*float64(t.Sub(p.anchor))))
}

func (c *hostClock) set(off time.Duration, drift float64, anchor time.Time) {
	c.p.Store(&clockParams{off: off, drift: drift, anchor: anchor})
}

// HostTime is lab time t on host's clock (what its pktcap-uw stamps and
// its date prints at t); t itself for an unknown host.
func (n *Network) HostTime(host string, t time.Time) time.Time {
	if h := n.hostBy[host]; h != nil {
		return h.clock.at(t)
	}
	return t
}

// HostNow is host's clock now.
func (n *Network) HostNow(host string) time.Time { return n.HostTime(host, time.Now()) }

// SetHostClock sets a host's clock from now on: offset against the lab's
// clock (nil keeps what it reads now, so only the drift changes) and drift
// in ppm (nil keeps the current drift).
func (n *Network) SetHostClock(host string, offset *time.Duration, driftPPM *float64) error {
	h := n.hostBy[host]
	if h == nil {
		return fmt.Errorf("lab: unknown host %q", host)
	}
	if driftPPM != nil && (*driftPPM > MaxDrift || *driftPPM < -MaxDrift) {
		return fmt.Errorf("lab: host %s: drift %vppm: want at most %dppm either way", host, *driftPPM, MaxDrift)
	}
	now := time.Now()
	off := h.clock.at(now).Sub(now)
	drift := 0.0
	if p := h.clock.p.Load(); p != nil {
		drift = p.drift
	}
	if offset != nil {
		off = *offset
	}
	if driftPPM != nil {
		drift = *driftPPM * 1e-6
	}
	h.clock.set(off, drift, now)
	return nil
}

// burst is a host's capture drop bursts: periodic ones from the topology,
// and one until a time (DropBurst). Read and changed under the network
// lock, at frame times.
type burst struct {
	every, length, phase time.Duration
	until                time.Time
}

// dropping reports whether captures on the host drop what they capture at
// lab time t.
func (b *burst) dropping(t time.Time) bool {
	if t.Before(b.until) {
		return true
	}
	if b.every <= 0 {
		return false
	}
	return time.Duration((t.UnixNano()-int64(b.phase))%int64(b.every)) < b.length
}

// DropBurst makes every capture on host drop what it would capture for d
// from now (pktcap-uw counts the drops in its summary).
func (n *Network) DropBurst(host string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("lab: host %s: drop burst of %v: want a positive length", host, d)
	}
	var err error
	n.run(func(now time.Time) {
		h := n.hostBy[host]
		if h == nil {
			err = fmt.Errorf("lab: unknown host %q", host)
			return
		}
		h.burst.until = now.Add(d)
	})
	return err
}

// SetDropBursts replaces a host's periodic drop bursts (the zero value:
// none).
func (n *Network) SetDropBursts(host string, b DropBurstConfig) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("lab: host %s: %w", host, err)
	}
	var err error
	n.run(func(time.Time) {
		h := n.hostBy[host]
		if h == nil {
			err = fmt.Errorf("lab: unknown host %q", host)
			return
		}
		h.burst.every, h.burst.length = b.Every, b.Length
		if b.Every > 0 {
			h.burst.phase = time.Duration(rand.New(rand.NewPCG(n.seed, uint64(h.index))).Int64N(int64(b.Every)))
		}
	})
	return err
}

// lossRand is a switch port's loss: its rate and its own random source,
// seeded by the topology's seed and the port's name so that which frames
// are lost does not depend on other ports' traffic.
func newLossRand(seed uint64, port string) *rand.Rand {
	f := fnv.New64a()
	f.Write([]byte(port))
	return rand.New(rand.NewPCG(seed, f.Sum64()))
}

// lost decides whether the next frame the port sends is lost.
func (p *swPort) lost() bool { return p.loss > 0 && p.rnd.Float64() < p.loss }

// SetPortLoss sets the fraction of the frames a physical switch port sends
// that are lost on its wire.
func (n *Network) SetPortLoss(port string, loss float64) error {
	if loss < 0 || loss > 1 {
		return fmt.Errorf("lab: switch port %s: loss %v: want a fraction from 0 to 1", port, loss)
	}
	var err error
	n.run(func(time.Time) {
		p := n.psw.byName[port]
		if p == nil {
			err = fmt.Errorf("lab: no switch port %q", port)
			return
		}
		p.loss = loss
	})
	return err
}

// SetManagementLink sets the management link between capturectl and a
// host's SSH server: each direction's latency and jitter, and the
// bandwidth (LinkConfig). It applies to live connections from the next
// byte.
func (l *Lab) SetManagementLink(host string, lc LinkConfig) error {
	if err := lc.Validate(); err != nil {
		return fmt.Errorf("lab: host %s: management link: %w", host, err)
	}
	h, err := l.host(host)
	if err != nil {
		return err
	}
	h.srv.SetLink(sshsrv.Link{Latency: lc.Latency, Jitter: lc.Jitter, Bandwidth: int64(lc.Bandwidth)})
	return nil
}
