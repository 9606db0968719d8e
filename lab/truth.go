package lab

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Ground truth (DESIGN.md §7): with RecordTruth, every frame the lab's VMs
// and stations send carries a unique tag, and the network records what
// happened to each copy of it: the uplinks it arrived on, the ports it
// reached, where and why each copy stopped, and which captures dropped it.

// The tag is 8 bytes, a 2-byte mark and a 48-bit frame number, where the
// frame has room for it without changing its length or meaning: the first
// 8 bytes of a UDP payload, bytes 16 to 24 of an ICMP echo's data (the
// checksum redone), or the padding of an ARP or RARP frame. Other frames
// (SendRaw's, unless they are one of these) carry none and are not
// recorded.
const (
	tagMark0, tagMark1 = 0xca, 0x7e
	tagLen             = 8
)

// tagOffset is where a frame's tag goes (0: it has no room for one).
func tagOffset(f []byte) int {
	switch etherType(f) {
	case etherTypeARP, etherTypeRARP:
		if len(f) >= 42+tagLen {
			return 42
		}
	case etherTypeIPv4:
		if len(f) < 34 {
			return 0
		}
		ihl := int(f[14]&0x0f) * 4
		l4 := 14 + ihl
		switch f[23] {
		case protoUDP:
			if len(f) >= l4+8+tagLen {
				return l4 + 8
			}
		case protoICMP:
			if len(f) >= l4+8+16+tagLen && (f[l4] == 8 || f[l4] == 0) {
				return l4 + 8 + 16
			}
		}
	}
	return 0
}

// stamp writes frame number id into f's tag (and fixes the ICMP
// checksum); false when f has no room for one.
func stamp(f []byte, id uint64) bool {
	off := tagOffset(f)
	if off == 0 {
		return false
	}
	f[off], f[off+1] = tagMark0, tagMark1
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	copy(f[off+2:off+8], b[2:])
	if etherType(f) == etherTypeIPv4 && f[23] == protoICMP {
		l4 := 14 + int(f[14]&0x0f)*4
		f[l4+2], f[l4+3] = 0, 0
		binary.BigEndian.PutUint16(f[l4+2:], checksum(f[l4:]))
	}
	return true
}

// FrameID reads the lab's tag from a frame as captured (untagged, or with
// one 802.1Q or 802.1ad tag): the frame number RecordTruth gave it.
func FrameID(f []byte) (uint64, bool) {
	if len(f) >= 18 {
		if et := binary.BigEndian.Uint16(f[12:14]); et == 0x8100 || et == 0x88a8 {
			f = append(append([]byte(nil), f[:12]...), f[16:]...)
		}
	}
	off := tagOffset(f)
	if off == 0 || f[off] != tagMark0 || f[off+1] != tagMark1 {
		return 0, false
	}
	var b [8]byte
	copy(b[2:], f[off+2:off+8])
	return binary.BigEndian.Uint64(b[:]), true
}

// EventKind is what happened to a copy of a frame.
type EventKind int

// Event kinds.
const (
	// Sent: a VM port (Port) sent the frame (VnicTx), or a station did.
	Sent EventKind = iota
	// Arrived: a copy arrived from the wire on Uplink of Host (UplinkRcv).
	Arrived
	// LeftUplink: a copy left Host by Uplink (UplinkSnd).
	LeftUplink
	// ReachedPortOutput: a copy reached PortOutput of Port, from Uplink
	// ("" from a port of the same vSwitch).
	ReachedPortOutput
	// ReachedVnicRx: a copy reached the vNIC of Port (VnicRx).
	ReachedVnicRx
	// Stopped: a copy stopped, for Reason, at Port (0 when at an uplink or
	// on the wire).
	Stopped
	// CaptureDropped: a capture at Stage of Host (Port, or Uplink) dropped
	// the copy it saw (a full buffer or a drop burst); the copy went on.
	CaptureDropped
)

var eventNames = [...]string{"sent", "arrived", "left by uplink", "PortOutput", "VnicRx", "stopped", "capture dropped"}

func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// StopReason is why a copy stopped.
type StopReason int

// Why copies stop.
const (
	NoStop StopReason = iota
	// ReverseTeaming: at PortOutput of a port whose team uplink is not the
	// one the copy came in on.
	ReverseTeaming
	// NotForPort: the port is not the destination (MAC), or it sent the
	// frame itself.
	NotForPort
	// WrongVLAN: the port is in another VLAN.
	WrongVLAN
	// LinkDown: the NIC (or the switch port toward it) is down.
	LinkDown
	// LostOnWire: a switch port's loss took it (SwitchPortConfig.Loss).
	LostOnWire
	// RPFPromisc: /Net/ReversePathFwdCheckPromisc dropped it before a
	// promiscuous port.
	RPFPromisc
	// NoUplink: the sending port had no uplink that was up.
	NoUplink
)

var stopNames = [...]string{"", "reverse teaming", "not for this port", "VLAN", "link down", "lost on the wire",
	"ReversePathFwdCheckPromisc", "no uplink"}

func (r StopReason) String() string {
	if r >= 0 && int(r) < len(stopNames) {
		return stopNames[r]
	}
	return fmt.Sprintf("StopReason(%d)", int(r))
}

// Event is one thing that happened to a copy of a frame, at lab time At.
type Event struct {
	At     time.Time
	Kind   EventKind
	Host   string // "" on the physical switch
	Uplink string
	Port   uint32
	Reason StopReason
	Stage  pktcap.Stage // CaptureDropped
	// SwitchPort is the physical switch port (LostOnWire, LinkDown there).
	SwitchPort string
}

// Fate is what happened to one frame the lab sent.
type Fate struct {
	ID     uint64
	From   string // the VM (vm or vm#N) or station that sent it
	Events []Event
}

// truth is the network's record (under Network.mu).
type truth struct {
	next   uint64
	frames map[uint64]*Fate
}

// RecordTruth makes every frame the lab's VMs and stations send from now
// on unique (tagged) and records each one's fate.
func (n *Network) RecordTruth() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.truth == nil {
		n.truth = &truth{frames: map[uint64]*Fate{}}
	}
}

// tagFrame gives a frame a number and starts its record.
func (n *Network) tagFrame(from string, f []byte) {
	if n.truth == nil {
		return
	}
	n.truth.next++
	id := n.truth.next
	if stamp(f, id) {
		n.truth.frames[id] = &Fate{ID: id, From: from}
	}
}

// record appends an event to the fate of frame f (under n.mu).
func (n *Network) record(f []byte, e Event) {
	if n.truth == nil {
		return
	}
	id, ok := FrameID(f)
	if !ok {
		return
	}
	if fate := n.truth.frames[id]; fate != nil {
		fate.Events = append(fate.Events, e)
	}
}

// Fate returns a copy of the record of frame id (false: not recorded).
func (n *Network) Fate(id uint64) (Fate, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.truth == nil {
		return Fate{}, false
	}
	f := n.truth.frames[id]
	if f == nil {
		return Fate{}, false
	}
	return Fate{ID: f.ID, From: f.From, Events: slices.Clone(f.Events)}, true
}

// Frames is the number of frames recorded.
func (n *Network) Frames() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.truth == nil {
		return 0
	}
	return len(n.truth.frames)
}

// PortFate is a frame's truth as seen from one VM port: what a trace of
// that port (its vSwitch's uplinks, its PortOutput and VnicRx) could know.
type PortFate struct {
	// Arrivals are the uplinks of the port's vSwitch a copy arrived on,
	// one entry per copy, in order.
	Arrivals []string
	// PortOutput and VnicRx count the copies that reached the port's
	// PortOutput and its vNIC; FromLocal counts those at PortOutput that
	// came from another port of the vSwitch.
	PortOutput, VnicRx, FromLocal int
	// Stops counts, per reason, the copies stopped on their way to this
	// port (at PortOutput, or before it: not for the port, VLAN).
	Stops map[StopReason]int
	// SentByPort: the port sent the frame.
	SentByPort bool
	// CaptureDrops are the capture points of the host that dropped a copy.
	CaptureDrops []Event
}

// PortFate sums up frame id's fate for VM port portID of host (false: the
// frame or the port is unknown).
func (n *Network) PortFate(id uint64, host string, portID uint32) (PortFate, bool) {
	f, ok := n.Fate(id)
	n.mu.Lock()
	h := n.hostBy[host]
	var p *vmPort
	if h != nil {
		p = h.port(portID)
	}
	n.mu.Unlock()
	if !ok || p == nil {
		return PortFate{}, false
	}
	pf := PortFate{Stops: map[StopReason]int{}}
	onSwitch := func(uplink string) bool { return p.vs.uplinkByName(uplink) != nil }
	for _, e := range f.Events {
		if e.Host != host {
			continue
		}
		switch {
		case e.Kind == Arrived && onSwitch(e.Uplink):
			pf.Arrivals = append(pf.Arrivals, e.Uplink)
		case e.Kind == Sent && e.Port == portID:
			pf.SentByPort = true
		case e.Kind == ReachedPortOutput && e.Port == portID:
			pf.PortOutput++
			if e.Uplink == "" {
				pf.FromLocal++
			}
		case e.Kind == ReachedVnicRx && e.Port == portID:
			pf.VnicRx++
		case e.Kind == Stopped && e.Port == portID:
			pf.Stops[e.Reason]++
		case e.Kind == CaptureDropped:
			pf.CaptureDrops = append(pf.CaptureDrops, e)
		}
	}
	return pf, true
}
