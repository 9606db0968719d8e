package lab

import (
	"fmt"
	"strings"
	"time"
)

// The physical switch: per-VLAN MAC learning, flooding of broadcast,
// multicast and unknown unicast, static LAGs (one copy per LAG, member by
// hash), and mirror (SPAN) sessions whose destination port carries only
// mirrored frames, like a Catalyst "monitor session".

type pswitch struct {
	n      *Network
	name   string
	ports  []*swPort
	byName map[string]*swPort
	table  map[macKey]*swPort
	static map[macKey]*swPort
	lags   []*lag
}

type macKey struct {
	vlan int
	mac  mac
}

type swPort struct {
	name    string
	access  int
	vlans   map[int]bool // nil: all
	native  int
	lag     *lag
	nic     *pnic
	station *endpoint
	// mirrorDest ports send only mirrored copies and drop what they receive.
	mirrorDest bool
	rxMirror   []*swPort
	txMirror   []*swPort
	// loss is the fraction of the frames sent that the wire loses.
	loss float64
	rnd  interface{ Float64() float64 }
}

type lag struct {
	name    string
	members []*swPort
}

func newPswitch(n *Network, c *SwitchConfig) (*pswitch, error) {
	s := &pswitch{n: n, name: c.Name, byName: map[string]*swPort{}, table: map[macKey]*swPort{}, static: map[macKey]*swPort{}}
	for _, pc := range c.Ports {
		p := &swPort{name: pc.Name, access: pc.Access, native: pc.Native, loss: pc.Loss, rnd: newLossRand(n.seed, pc.Name)}
		if len(pc.VLANs) > 0 {
			p.vlans = map[int]bool{}
			for _, v := range pc.VLANs {
				p.vlans[v] = true
			}
		}
		if p.access == 0 && p.native == 0 {
			p.native = 1
		}
		switch {
		case strings.HasPrefix(pc.Connect, "station:"):
			st := n.guests[strings.TrimPrefix(pc.Connect, "station:")]
			if st == nil {
				return nil, fmt.Errorf("lab: switch port %s: unknown station", pc.Name)
			}
			p.station = st
			st.wire = p
		case pc.Connect != "":
			hn, nic, _ := splitHostNIC(pc.Connect)
			h := n.hostBy[hn]
			if h == nil || h.nics[nic] == nil {
				return nil, fmt.Errorf("lab: switch port %s: %s is not a host NIC", pc.Name, pc.Connect)
			}
			p.nic = h.nics[nic]
			p.nic.wire = p
		}
		s.ports = append(s.ports, p)
		s.byName[p.name] = p
	}
	for _, lc := range c.LAGs {
		l := &lag{name: lc.Name}
		for _, m := range lc.Ports {
			p := s.byName[m]
			p.lag = l
			l.members = append(l.members, p)
		}
		s.lags = append(s.lags, l)
	}
	for _, mc := range c.Mirrors {
		d := s.byName[mc.Destination]
		d.mirrorDest = true
		for _, src := range mc.Sources {
			p := s.byName[src]
			if mc.Direction == "rx" || mc.Direction == "both" {
				p.rxMirror = append(p.rxMirror, d)
			}
			if mc.Direction == "tx" || mc.Direction == "both" {
				p.txMirror = append(p.txMirror, d)
			}
		}
	}
	for _, sm := range c.StaticMACs {
		m, _ := parseMAC(sm.MAC)
		s.static[macKey{sm.VLAN, m}] = s.byName[sm.Port]
	}
	return s, nil
}

// carries reports whether the port forwards VLAN v.
func (p *swPort) carries(v int) bool {
	if p.access != 0 {
		return v == p.access
	}
	return v == p.native || p.vlans == nil || p.vlans[v]
}

// ingressVLAN maps a received frame's tag to its VLAN (0: drop).
func (p *swPort) ingressVLAN(tag int) int {
	if p.access != 0 {
		if tag != 0 && tag != p.access {
			return 0
		}
		return p.access
	}
	if tag == 0 {
		return p.native
	}
	if !p.carries(tag) {
		return 0
	}
	return tag
}

// egressTag is the tag a frame of VLAN v carries on the wire out of p.
func (p *swPort) egressTag(v int) int {
	if p.access != 0 || v == p.native {
		return 0
	}
	return v
}

func (p *swPort) up() bool {
	if p.nic != nil {
		return p.nic.up
	}
	return true
}

// receive handles a frame arriving at switch port in with the given tag.
func (s *pswitch) receive(in *swPort, frame []byte, tag int, at time.Time) {
	if in.mirrorDest || !in.up() {
		return
	}
	vlan := in.ingressVLAN(tag)
	if vlan == 0 {
		return
	}
	// mirrored copies leave after the frame is forwarded (they lag behind)
	arrived := at
	defer func() {
		for _, d := range in.rxMirror {
			s.deliver(d, frame, tag, arrived.Add(latMirror))
		}
	}()
	src, dst := srcMAC(frame), dstMAC(frame)
	learnOn := in
	if in.lag != nil {
		learnOn = in.lag.members[0]
	}
	if !src.isGroup() {
		if _, pinned := s.static[macKey{vlan, src}]; !pinned {
			s.table[macKey{vlan, src}] = learnOn
		}
	}
	at = at.Add(latWire)
	if !dst.isGroup() {
		out := s.static[macKey{vlan, dst}]
		if out == nil {
			out = s.table[macKey{vlan, dst}]
		}
		if out != nil {
			if out.lag != nil {
				if out.lag == in.lag {
					return
				}
				out = s.lagMember(out.lag, frame)
			}
			if out != in && out.carries(vlan) {
				s.transmit(out, frame, vlan, at)
			}
			return
		}
	}
	// flood: every port of the VLAN but the ingress (and its LAG), one
	// member per LAG
	for _, p := range s.ports {
		if p == in || p.mirrorDest || !p.carries(vlan) {
			continue
		}
		if p.lag != nil {
			if p.lag == in.lag || p != p.lag.members[0] {
				continue
			}
			p = s.lagMember(p.lag, frame)
		}
		s.transmit(p, frame, vlan, at)
	}
}

// lagMember picks the LAG member for a frame by a src/dst IP (else MAC) hash.
func (s *pswitch) lagMember(l *lag, frame []byte) *swPort {
	var h int
	if src, dst, _, _, ok := ipv4(frame); ok {
		a, b := src.As4(), dst.As4()
		h = int(a[3] ^ b[3])
	} else {
		h = int(frame[5] ^ frame[11])
	}
	var up []*swPort
	for _, m := range l.members {
		if m.up() {
			up = append(up, m)
		}
	}
	if len(up) == 0 {
		return l.members[0]
	}
	return up[h%len(up)]
}

func (s *pswitch) transmit(out *swPort, frame []byte, vlan int, at time.Time) {
	tag := out.egressTag(vlan)
	s.deliver(out, frame, tag, at)
	for _, d := range out.txMirror {
		s.deliver(d, frame, tag, at.Add(latMirror))
	}
}

// deliver puts a frame on the wire of port out towards what is plugged in.
func (s *pswitch) deliver(out *swPort, frame []byte, tag int, at time.Time) {
	if !out.up() {
		if s.n.truth != nil {
			s.n.record(frame, Event{At: at, Kind: Stopped, SwitchPort: out.name, Reason: LinkDown})
		}
		return
	}
	if out.lost() {
		if s.n.truth != nil {
			s.n.record(frame, Event{At: at, Kind: Stopped, SwitchPort: out.name, Reason: LostOnWire})
		}
		return
	}
	switch {
	case out.nic != nil:
		s.n.uplinkReceive(out.nic, frame, tag, at.Add(latWire))
	case out.station != nil:
		if out.station.vlan == tag {
			out.station.receive(frame, at.Add(latWire))
		}
	}
}

func splitHostNIC(s string) (string, string, bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
