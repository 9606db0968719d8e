package lab

import (
	"hash/fnv"
	"net/netip"
	"sync/atomic"
	"time"
)

// Guest stacks (VM vNICs and stations).

type endpoint struct {
	n     *Network
	name  string
	mac   mac
	ip    netip.Prefix
	vlan  int     // stations: 802.1Q tag they send (0: untagged)
	port  *vmPort // VM vNIC
	wire  *swPort // station
	arp   map[netip.Addr]mac
	ipID  uint16
	ident uint16
	// pending echo requests: key ident<<16|seq
	waiting map[uint32]chan time.Time
	rx      atomic.Uint64
}

func newEndpoint(n *Network, name string, m mac, ip netip.Prefix) *endpoint {
	f := fnv.New32a()
	f.Write([]byte(name))
	return &endpoint{n: n, name: name, mac: m, ip: ip, arp: map[netip.Addr]mac{}, ident: uint16(f.Sum32()),
		ipID: uint16(f.Sum32() >> 16), waiting: map[uint32]chan time.Time{}}
}

// send puts a frame on the endpoint's link at time at.
func (e *endpoint) send(frame []byte, at time.Time) {
	if e.n.truth != nil {
		e.n.tagFrame(e.name, frame)
		ev := Event{At: at, Kind: Sent}
		if e.port != nil {
			ev.Host, ev.Port = e.port.vs.h.name, e.port.id
		}
		e.n.record(frame, ev)
	}
	switch {
	case e.port != nil:
		e.n.vmTransmit(e.port, frame, at)
	case e.wire != nil:
		e.n.psw.receive(e.wire, frame, e.vlan, at)
	}
}

// receive is the guest's network stack: it answers ARP and ICMP echo for its
// own address and completes pings. Frames not addressed to it (seen in
// promiscuous mode) are only counted.
func (e *endpoint) receive(frame []byte, at time.Time) {
	e.rx.Add(1)
	dst := dstMAC(frame)
	if dst != e.mac && !dst.isGroup() {
		return
	}
	if !e.ip.IsValid() {
		return
	}
	me := e.ip.Addr()
	if op, sha, spa, tpa, ok := arpFields(frame); ok && etherType(frame) == etherTypeARP {
		if spa.IsValid() && !spa.IsUnspecified() && (tpa == me || e.arp[spa] != (mac{})) {
			e.arp[spa] = sha
		}
		if op == 1 && tpa == me {
			reply := arpFrame(etherTypeARP, 2, sha, e.mac, e.mac, me, sha, spa)
			e.later(reply, at)
		}
		return
	}
	src, dstIP, proto, l4, ok := ipv4(frame)
	if !ok || dstIP != me || proto != protoICMP || len(l4) < 8 {
		return
	}
	switch l4[0] {
	case 8: // echo request
		e.ipID++
		e.arp[src] = srcMAC(frame)
		reply := icmpEcho(0, srcMAC(frame), e.mac, me, src, e.ipID,
			uint16(l4[4])<<8|uint16(l4[5]), uint16(l4[6])<<8|uint16(l4[7]), l4[8:])
		e.later(reply, at)
	case 0: // echo reply
		key := uint32(l4[4])<<24 | uint32(l4[5])<<16 | uint32(l4[6])<<8 | uint32(l4[7])
		if ch := e.waiting[key]; ch != nil {
			select {
			case ch <- at:
			default:
			}
		}
	}
}

// later queues a frame the guest sends in response, after its processing
// delay; it is forwarded once the current frame is done.
func (e *endpoint) later(frame []byte, at time.Time) {
	e.n.queue = append(e.n.queue, func() { e.send(frame, at.Add(latGuest)) })
}

// resolve returns the MAC for ip, sending an ARP request when unknown.
func (e *endpoint) resolve(ip netip.Addr, at time.Time) (mac, bool) {
	if m, ok := e.arp[ip]; ok {
		return m, true
	}
	req := arpFrame(etherTypeARP, 1, broadcastMAC, e.mac, e.mac, e.ip.Addr(), mac{}, ip)
	e.send(req, at)
	e.n.drainLocked()
	m, ok := e.arp[ip]
	return m, ok
}
