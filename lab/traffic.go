package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"
)

// Traffic: ping, broadcast, UDP, raw frames and the rate-controlled
// generator.

// PingResult summarises a ping run.
type PingResult struct {
	Sent, Received int
	RTTs           []time.Duration
}

// ErrUnknownStation is returned for names that are no VM or station.
var ErrUnknownStation = errors.New("no such VM or station")

func (n *Network) guest(name string) (*endpoint, error) {
	if e := n.guests[name]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("lab: %q: %w", name, ErrUnknownStation)
}

// target resolves a VM/station name or an IP address to an address.
func (n *Network) target(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, nil
	}
	e, err := n.guest(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if !e.ip.IsValid() {
		return netip.Addr{}, fmt.Errorf("lab: %s has no IP address", s)
	}
	return e.ip.Addr(), nil
}

// Ping sends count ICMP echo requests from one VM or station to another
// (name or IP), interval apart, ARPing first like a real stack.
func (n *Network) Ping(ctx context.Context, from, to string, count int, interval time.Duration) (PingResult, error) {
	var res PingResult
	n.mu.Lock()
	src, err := n.guest(from)
	var dst netip.Addr
	if err == nil {
		dst, err = n.target(to)
	}
	n.mu.Unlock()
	if err != nil {
		return res, err
	}
	if !src.ip.IsValid() {
		return res, fmt.Errorf("lab: %s has no IP address", from)
	}
	for i := 0; i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(interval):
			}
		}
		reply := make(chan time.Time, 1)
		var sent time.Time
		ok := false
		n.run(func(now time.Time) {
			m, resolved := src.resolve(dst, now)
			if !resolved {
				return
			}
			src.ipID++
			seq := uint16(res.Sent + 1)
			key := uint32(src.ident)<<16 | uint32(seq)
			src.waiting[key] = reply
			sent = now.Add(latGuest)
			us := sent.UnixMicro()
			f := icmpEcho(8, m, src.mac, src.ip.Addr(), dst, src.ipID, src.ident, seq,
				pingPayload(uint32(us/1e6), uint32(us%1e6)))
			src.send(f, sent)
			ok = true
		})
		res.Sent++
		if !ok {
			continue
		}
		n.mu.Lock()
		key := uint32(src.ident)<<16 | uint32(res.Sent)
		delete(src.waiting, key)
		n.mu.Unlock()
		select {
		case t := <-reply:
			res.Received++
			res.RTTs = append(res.RTTs, t.Sub(sent))
		default:
		}
	}
	return res, nil
}

// Broadcast sends one broadcast ARP request from a VM or station for ip
// (who-has), which the physical switch floods to every port of the VLAN.
func (n *Network) Broadcast(from string, ip netip.Addr) error {
	var err error
	n.run(func(now time.Time) {
		var e *endpoint
		if e, err = n.guest(from); err != nil {
			return
		}
		e.send(arpFrame(etherTypeARP, 1, broadcastMAC, e.mac, e.mac, e.ip.Addr(), mac{}, ip), now)
	})
	return err
}

// SendUDP sends count UDP datagrams of size bytes (frame size) from one
// VM/station to another, resolving the destination by ARP first. It does
// not pace; see Generate for a rate.
func (n *Network) SendUDP(from, to string, count, size int) error {
	var err error
	n.run(func(now time.Time) {
		var src *endpoint
		if src, err = n.guest(from); err != nil {
			return
		}
		var dst netip.Addr
		if dst, err = n.target(to); err != nil {
			return
		}
		m, ok := src.resolve(dst, now)
		if !ok {
			err = fmt.Errorf("lab: %s: no ARP reply from %s", from, dst)
			return
		}
		for i := 0; i < count; i++ {
			src.ipID++
			src.send(udpFrame(m, src.mac, src.ip.Addr(), dst, src.ipID, 40000, 9, size, uint64(i)), now)
			n.drainLocked()
		}
	})
	return err
}

// SendRaw injects a raw untagged Ethernet frame from a VM or station.
func (n *Network) SendRaw(from string, frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("lab: frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	var err error
	n.run(func(now time.Time) {
		var e *endpoint
		if e, err = n.guest(from); err != nil {
			return
		}
		e.send(append([]byte(nil), frame...), now)
	})
	return err
}

// GenSpec describes generated UDP load.
type GenSpec struct {
	From, To string
	// Rate in frames per second; 0 sends as fast as possible.
	Rate int
	// Count frames in all; 0 runs until ctx ends.
	Count int
	// Size of each frame in bytes (min 60).
	Size int
}

// Generate sends UDP frames at a rate until Count frames are sent or ctx
// ends, and returns the number sent. Frames are paced in 1 ms batches.
func (n *Network) Generate(ctx context.Context, g GenSpec) (int, error) {
	n.mu.Lock()
	src, err := n.guest(g.From)
	var dst netip.Addr
	if err == nil {
		dst, err = n.target(g.To)
	}
	n.mu.Unlock()
	if err != nil {
		return 0, err
	}
	var dmac mac
	var ok bool
	n.run(func(now time.Time) { dmac, ok = src.resolve(dst, now) })
	if !ok {
		return 0, fmt.Errorf("lab: %s: no ARP reply from %s", g.From, dst)
	}
	start := time.Now()
	sent := 0
	const batchEvery = time.Millisecond
	for g.Count == 0 || sent < g.Count {
		if ctx.Err() != nil {
			return sent, nil
		}
		want := g.Count - sent
		if g.Count == 0 || want > 256 {
			want = 256
		}
		if g.Rate > 0 {
			due := int(time.Since(start).Seconds()*float64(g.Rate)) - sent
			if due <= 0 {
				select {
				case <-ctx.Done():
					return sent, nil
				case <-time.After(batchEvery):
				}
				continue
			}
			if due < want {
				want = due
			}
		}
		n.mu.Lock()
		now := n.clock()
		for i := 0; i < want; i++ {
			src.ipID++
			src.send(udpFrame(dmac, src.mac, src.ip.Addr(), dst, src.ipID, 40000, 9, g.Size, uint64(sent+i)), now)
		}
		n.drainLocked()
		n.mu.Unlock()
		sent += want
		runtime.Gosched() // let capture readers keep up on a busy core
	}
	return sent, nil
}

// Received reports how many frames a VM/station's stack has received.
func (n *Network) Received(name string) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, err := n.guest(name)
	if err != nil {
		return 0, err
	}
	return e.rx.Load(), nil
}
