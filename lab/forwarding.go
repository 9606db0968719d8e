package lab

import (
	"slices"
	"time"

	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/teaming"
)

// Forwarding inside a host.

// uplinkReceive handles a frame arriving at a host NIC from the wire. vlan
// is the 802.1Q tag on the wire (0: untagged).
func (n *Network) uplinkReceive(nic *pnic, frame []byte, vlan int, at time.Time) {
	u := nic.port
	if u == nil || !nic.up {
		if u != nil && n.truth != nil {
			n.record(frame, Event{At: at, Kind: Stopped, Host: u.vs.h.name, Uplink: nic.name, Reason: LinkDown})
		}
		return
	}
	vs := u.vs
	rec := n.truth != nil
	if rec {
		n.record(frame, Event{At: at, Kind: Arrived, Host: vs.h.name, Uplink: nic.name})
	}
	var base []Hop // the frame's path for pktcap-uw --trace, when one runs
	traced := 0
	if len(vs.h.traceTaps) > 0 {
		base = []Hop{{at, UplinkRcv}, {at, PortInput}}
	}
	u.taps[UplinkRcv].emit(Captured{Time: at, Point: UplinkRcv, PortID: u.id, VLAN: vlan, Data: frame})
	u.taps[PortInput].emit(Captured{Time: at, Point: PortInput, PortID: u.id, VLAN: vlan, Data: frame})
	dst, src := dstMAC(frame), srcMAC(frame)
	srcLocal := false
	for _, p := range vs.ports {
		if p.mac == src {
			srcLocal = true
			break
		}
	}
	at = at.Add(latPortOutput)
	stop := func(p *vmPort, why StopReason) {
		if rec {
			n.record(frame, Event{At: at, Kind: Stopped, Host: vs.h.name, Uplink: nic.name, Port: p.id, Reason: why})
		}
	}
	for _, p := range vs.ports {
		if !p.inVLAN(vlan) {
			stop(p, WrongVLAN)
			continue
		}
		if !(p.mac == dst || dst.isGroup() || p.promisc) {
			stop(p, NotForPort)
			continue
		}
		if p.mac == src {
			stop(p, NotForPort)
			continue // never loop a frame back to its sender
		}
		p.taps[PortOutput].emit(Captured{Time: at, Point: PortOutput, PortID: p.id, VLAN: vlan, Data: frame})
		if rec {
			n.record(frame, Event{At: at, Kind: ReachedPortOutput, Host: vs.h.name, Uplink: nic.name, Port: p.id})
		}
		var path []Hop
		if base != nil {
			path = append(slices.Clip(base), Hop{at, PortOutput})
			traced++
		}
		if p.team.reverseFilter() && p.uplink != u {
			// Reverse teaming. Whether real ESXi shows these drops at the
			// Drop point is unknown (DESIGN.md §1a), so the lab does not:
			// nothing may rely on them.
			stop(p, ReverseTeaming)
			vs.h.trace(frame, vlan, path, at)
			continue
		}
		if p.promisc && p.mac != dst && srcLocal && vs.h.rpfPromisc {
			n.hostDrop(vs.h, p.id, frame, vlan, at, "ReversePathFwdCheckPromisc")
			stop(p, RPFPromisc)
			if path != nil {
				vs.h.trace(frame, vlan, append(path, Hop{at, Drop}), at)
			}
			continue
		}
		p.taps[VnicRx].emit(Captured{Time: at.Add(latVnicRx), Point: VnicRx, PortID: p.id, VLAN: -1, Data: frame})
		if path != nil {
			vs.h.trace(frame, vlan, append(path, Hop{at.Add(latVnicRx), VnicRx}), at.Add(latVnicRx))
		}
		if rec {
			n.record(frame, Event{At: at.Add(latVnicRx), Kind: ReachedVnicRx, Host: vs.h.name, Uplink: nic.name, Port: p.id})
		}
		p.guest.receive(frame, at.Add(latVnicRx))
	}
	if base != nil && traced == 0 {
		vs.h.trace(frame, vlan, base, at) // freed in the switch: no port took it
	}
}

// Hop is one capture point a frame passed, for pktcap-uw --trace.
type Hop struct {
	At    time.Time
	Point pktcap.Stage
}

// trace hands a frame copy's path to the host's --trace sessions: the copy
// is freed at at (pktcap-uw prints it "Captured at PktFree point"). A nil
// path means no session traces.
func (h *host) trace(frame []byte, vlan int, path []Hop, at time.Time) {
	if path == nil {
		return
	}
	h.traceTaps.emit(Captured{Time: at, Point: pktcap.StageOther, VLAN: vlan, Data: frame, Path: path})
}

// hostDrop records a drop at the host's Drop point.
func (n *Network) hostDrop(h *host, portID uint32, frame []byte, vlan int, at time.Time, reason string) {
	h.dropTaps.emit(Captured{Time: at, Point: Drop, PortID: portID, VLAN: vlan, Data: frame, Reason: reason})
}

func (p *vmPort) inVLAN(vlan int) bool { return p.pg.vlan == 4095 || p.pg.vlan == vlan }

// vmTransmit handles a frame sent by a VM's vNIC.
func (n *Network) vmTransmit(p *vmPort, frame []byte, at time.Time) {
	vs := p.vs
	vlan := p.pg.vlan
	p.taps[VnicTx].emit(Captured{Time: at, Point: VnicTx, PortID: p.id, VLAN: -1, Data: frame})
	var base []Hop
	if len(vs.h.traceTaps) > 0 {
		base = []Hop{{at, VnicTx}, {at.Add(latPortInput), PortInput}}
	}
	at = at.Add(latPortInput)
	p.taps[PortInput].emit(Captured{Time: at, Point: PortInput, PortID: p.id, VLAN: vlan, Data: frame})
	dst := dstMAC(frame)
	local := false
	out := at.Add(latPortOutput)
	rec := n.truth != nil
	stop := func(q *vmPort, why StopReason) {
		if rec {
			n.record(frame, Event{At: out, Kind: Stopped, Host: vs.h.name, Port: q.id, Reason: why})
		}
	}
	for _, q := range vs.ports {
		if q == p {
			continue
		}
		if !q.inVLAN(vlan) {
			stop(q, WrongVLAN)
			continue
		}
		if q.mac == dst {
			local = true
		} else if !dst.isGroup() && !q.promisc {
			stop(q, NotForPort)
			continue
		}
		q.taps[PortOutput].emit(Captured{Time: out, Point: PortOutput, PortID: q.id, VLAN: vlan, Data: frame})
		q.taps[VnicRx].emit(Captured{Time: out.Add(latVnicRx), Point: VnicRx, PortID: q.id, VLAN: -1, Data: frame})
		if base != nil {
			vs.h.trace(frame, vlan, append(slices.Clip(base), Hop{out, PortOutput}, Hop{out.Add(latVnicRx), VnicRx}), out.Add(latVnicRx))
		}
		if rec {
			n.record(frame, Event{At: out, Kind: ReachedPortOutput, Host: vs.h.name, Port: q.id})
			n.record(frame, Event{At: out.Add(latVnicRx), Kind: ReachedVnicRx, Host: vs.h.name, Port: q.id})
		}
		q.guest.receive(frame, out.Add(latVnicRx))
	}
	if local {
		return
	}
	u := p.uplink
	if p.team.policy == teaming.IPHash {
		u = vs.ipHashUplink(p, frame)
	}
	if u == nil || !u.nic.up {
		n.hostDrop(vs.h, p.id, frame, vlan, at, "no uplink")
		if base != nil {
			vs.h.trace(frame, vlan, append(base, Hop{at, Drop}), at)
		}
		if rec {
			n.record(frame, Event{At: at, Kind: Stopped, Host: vs.h.name, Port: p.id, Reason: NoUplink})
		}
		return
	}
	n.uplinkSend(u, frame, vlan, at.Add(latToUplink), base)
}

// uplinkSend hands a frame to an uplink; path is its --trace path so far
// (nil when no --trace session runs, or to start one from here).
func (n *Network) uplinkSend(u *uplinkPort, frame []byte, vlan int, at time.Time, path []Hop) {
	u.taps[PortOutput].emit(Captured{Time: at, Point: PortOutput, PortID: u.id, VLAN: vlan, Data: frame})
	u.taps[UplinkSnd].emit(Captured{Time: at, Point: UplinkSnd, PortID: u.id, VLAN: vlan, Data: frame})
	if path == nil && len(u.vs.h.traceTaps) > 0 {
		path = []Hop{}
	}
	if path != nil {
		u.vs.h.trace(frame, vlan, append(path, Hop{at, PortOutput}, Hop{at, UplinkSnd}), at)
	}
	if n.truth != nil {
		n.record(frame, Event{At: at, Kind: LeftUplink, Host: u.vs.h.name, Uplink: u.nic.name})
	}
	if u.nic.wire != nil {
		n.psw.receive(u.nic.wire, frame, vlan, at.Add(latWire))
	}
}
