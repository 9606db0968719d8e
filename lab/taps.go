package lab

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Capture points and their subscribers (taps).

// The stages of a host's data path the lab captures at. They are
// pktcap.Stage, the one stage type capturectl and the lab share:
// pktcap-uw point names map onto them as on a real host
// (pktcap.Point.Stage: EtherswitchDispath and UplinkRcvKernel are the
// uplink receive stage, Vmxnet3Rx is VnicRx). The names are the lab's
// shorthand for the stages' usual points.
const (
	UplinkRcv  = pktcap.StageUplinkRx   // frame received from the physical NIC
	UplinkSnd  = pktcap.StageUplinkTx   // frame handed to the physical NIC
	PortInput  = pktcap.StagePortInput  // frame entering the vSwitch from a port
	PortOutput = pktcap.StagePortOutput // frame leaving the vSwitch to a port, before reverse teaming
	VnicRx     = pktcap.StageVnicRx     // frame delivered to the vNIC (after reverse teaming)
	VnicTx     = pktcap.StageVnicTx     // frame sent by the vNIC
	Drop       = pktcap.StageDrop       // frame dropped by the host (host-wide)
)

// labStage reports whether the lab emulates stage s.
func labStage(s pktcap.Stage) bool { return s > pktcap.StageOther && s < pktcap.NumStages }

// Captured is one frame seen at a capture point. Data is shared between
// subscribers and must not be modified.
type Captured struct {
	Time   time.Time
	Point  pktcap.Stage
	PortID uint32
	// VLAN is the 802.1Q VLAN the vSwitch associates with the frame at this
	// point (metadata, not in Data); -1 at points that carry none (VnicRx,
	// VnicTx).
	VLAN int
	Data []byte
	// Reason is set at the Drop point.
	Reason string
	// Path is the points the frame copy passed, for --trace sessions
	// (Selector.Trace); nil elsewhere.
	Path []Hop
}

// Tap is a subscription to a capture point. Frames arrive on C; when the
// subscriber falls behind and the buffer is full, frames are dropped and
// counted, as pktcap-uw's kernel buffer does.
type Tap struct {
	C       <-chan Captured
	ch      chan Captured
	filter  func(frame []byte, vlan int) bool
	dropped atomic.Uint64
	matched atomic.Uint64
	close   func()
	once    sync.Once
	host    *host
	sel     Selector
	owner   int // the virtual PID of the pktcap-uw that subscribed it (0: the Go API)
}

// Dropped is the number of matching frames lost because the buffer was full.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }

// Matched is the number of frames that matched the tap's filter.
func (t *Tap) Matched() uint64 { return t.matched.Load() }

// Close unsubscribes. Frames already queued stay readable; C is not closed.
func (t *Tap) Close() { t.once.Do(t.close) }

type tapList []*Tap

func (tl tapList) emit(c Captured) {
	for _, t := range tl {
		if t.filter != nil && !t.filter(c.Data, c.VLAN) {
			continue
		}
		t.matched.Add(1)
		if t.host != nil && t.host.burst.dropping(c.Time) {
			t.drop(c)
			continue
		}
		select {
		case t.ch <- c:
		default:
			t.drop(c)
		}
	}
}

// drop counts a frame the tap's buffer had no room for (under the
// network lock) and records it in the truth.
func (t *Tap) drop(c Captured) {
	t.dropped.Add(1)
	if t.host != nil && t.host.n.truth != nil {
		e := Event{At: c.Time, Kind: CaptureDropped, Host: t.host.name, Stage: c.Point, Port: t.sel.PortID, Uplink: t.sel.Uplink}
		t.host.n.record(c.Data, e)
	}
}

// Selector names a capture point on a host.
type Selector struct {
	Point pktcap.Stage
	// Uplink selects an uplink port by NIC name (vmnicN).
	Uplink string
	// PortID selects a vSwitch port by ID (VM ports and uplink ports).
	PortID uint32
	// Trace subscribes to every frame copy the host frees, with its path
	// (pktcap-uw --trace); Point, Uplink and PortID are then unused.
	Trace bool
}

// Subscribe taps a capture point of a host. filter (optional) selects
// frames; buf is the queue length before frames are dropped.
func (n *Network) Subscribe(hostName string, sel Selector, filter func(frame []byte, vlan int) bool, buf int) (*Tap, error) {
	return n.subscribe(hostName, sel, filter, buf, 0)
}

// subscribe is Subscribe for the process owner (a virtual PID), so a test
// can find the taps behind one pktcap-uw.
func (n *Network) subscribe(hostName string, sel Selector, filter func(frame []byte, vlan int) bool, buf, owner int) (*Tap, error) {
	if buf < 1 {
		buf = 1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostBy[hostName]
	if h == nil {
		return nil, fmt.Errorf("lab: unknown host %q", hostName)
	}
	var list *tapList
	switch {
	case sel.Trace:
		list = &h.traceTaps
	case !labStage(sel.Point):
		return nil, fmt.Errorf("lab: host %s: the lab does not capture at stage %s", hostName, sel.Point)
	case sel.Point == Drop:
		list = &h.dropTaps
	case sel.Uplink != "":
		u := h.uplink(sel.Uplink)
		if u == nil {
			return nil, fmt.Errorf("lab: host %s: no uplink %s on any vSwitch", hostName, sel.Uplink)
		}
		if sel.Point == VnicRx || sel.Point == VnicTx {
			return nil, fmt.Errorf("lab: host %s: %s is not a capture point of uplink %s", hostName, sel.Point, sel.Uplink)
		}
		list = &u.taps[sel.Point]
	default:
		p := h.port(sel.PortID)
		if p == nil {
			return nil, fmt.Errorf("lab: host %s: no switch port %d", hostName, sel.PortID)
		}
		list = p.tapsFor(sel.Point)
		if list == nil {
			return nil, fmt.Errorf("lab: host %s: %s is not a capture point of port %d", hostName, sel.Point, sel.PortID)
		}
	}
	ch := make(chan Captured, buf)
	t := &Tap{C: ch, ch: ch, filter: filter, host: h, sel: sel, owner: owner}
	*list = append(append(tapList(nil), *list...), t)
	t.close = func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		var kept tapList
		for _, x := range *list {
			if x != t {
				kept = append(kept, x)
			}
		}
		*list = kept
	}
	return t, nil
}

func (p *vmPort) tapsFor(pt pktcap.Stage) *tapList {
	if pt == UplinkRcv || pt == UplinkSnd || pt == Drop {
		return nil
	}
	return &p.taps[pt]
}
