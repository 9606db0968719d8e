package lab

import (
	"time"

	"github.com/capturectl/capturectl/teaming"
)

// Forwarding inside a host.

// uplinkReceive handles a frame arriving at a host NIC from the wire. vlan
// is the 802.1Q tag on the wire (0: untagged).
func (n *Network) uplinkReceive(nic *pnic, frame []byte, vlan int, at time.Time) {
	u := nic.port
	if u == nil || !nic.up {
		return
	}
	vs := u.vs
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
	for _, p := range vs.ports {
		if !p.inVLAN(vlan) || !(p.mac == dst || dst.isGroup() || p.promisc) {
			continue
		}
		if p.mac == src {
			continue // never loop a frame back to its sender
		}
		p.taps[PortOutput].emit(Captured{Time: at, Point: PortOutput, PortID: p.id, VLAN: vlan, Data: frame})
		if p.team.reverseFilter() && p.uplink != u {
			// Reverse teaming. Whether real ESXi shows these drops at the
			// Drop point is unknown (DESIGN.md §1a), so the lab does not:
			// nothing may rely on them.
			continue
		}
		if p.promisc && p.mac != dst && srcLocal && vs.h.rpfPromisc {
			n.hostDrop(vs.h, p.id, frame, vlan, at, "ReversePathFwdCheckPromisc")
			continue
		}
		p.taps[VnicRx].emit(Captured{Time: at.Add(latVnicRx), Point: VnicRx, PortID: p.id, VLAN: -1, Data: frame})
		p.guest.receive(frame, at.Add(latVnicRx))
	}
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
	at = at.Add(latPortInput)
	p.taps[PortInput].emit(Captured{Time: at, Point: PortInput, PortID: p.id, VLAN: vlan, Data: frame})
	dst := dstMAC(frame)
	local := false
	out := at.Add(latPortOutput)
	for _, q := range vs.ports {
		if q == p || !q.inVLAN(vlan) {
			continue
		}
		if q.mac == dst {
			local = true
		} else if !dst.isGroup() && !q.promisc {
			continue
		}
		q.taps[PortOutput].emit(Captured{Time: out, Point: PortOutput, PortID: q.id, VLAN: vlan, Data: frame})
		q.taps[VnicRx].emit(Captured{Time: out.Add(latVnicRx), Point: VnicRx, PortID: q.id, VLAN: -1, Data: frame})
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
		return
	}
	n.uplinkSend(u, frame, vlan, at.Add(latToUplink))
}

func (n *Network) uplinkSend(u *uplinkPort, frame []byte, vlan int, at time.Time) {
	u.taps[PortOutput].emit(Captured{Time: at, Point: PortOutput, PortID: u.id, VLAN: vlan, Data: frame})
	u.taps[UplinkSnd].emit(Captured{Time: at, Point: UplinkSnd, PortID: u.id, VLAN: vlan, Data: frame})
	if u.nic.wire != nil {
		n.psw.receive(u.nic.wire, frame, vlan, at.Add(latWire))
	}
}
