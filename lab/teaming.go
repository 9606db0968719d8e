package lab

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/capturectl/capturectl/teaming"
)

// Teaming: which uplink a VM port sends on (its team uplink), the reverse
// teaming filter, and the run-time changes that move a port (team uplink
// pinned, link state).

type team struct {
	policy          teaming.Policy
	active, standby []string
	notify          bool
}

// reverseFilter reports whether the policy applies the teaming policy to
// inbound frames (teaming.Policy.ReverseFilter: IP hash needs a LAG, which
// sends one copy only; whether ESXi also filters there is not documented,
// so the lab does not).
func (t team) reverseFilter() bool { return t.policy.ReverseFilter() }

// chooseUplink is the teaming decision for a port: among the active uplinks
// with link up (standby ones when none is up), srcport and loadbased pick by
// port ID, srcmac by the MAC's last byte, explicit and iphash the first in
// order (iphash spreads per frame at transmit time).
func (vs *vswitch) chooseUplink(p *vmPort) *uplinkPort {
	var cands []*uplinkPort
	for _, list := range [][]string{p.team.active, p.team.standby} {
		for _, name := range list {
			if u := vs.uplinkByName(name); u != nil && u.nic.up {
				cands = append(cands, u)
			}
		}
		if len(cands) > 0 {
			break
		}
	}
	if len(cands) == 0 {
		return nil
	}
	switch p.team.policy {
	case teaming.SrcPort, teaming.LoadBased:
		return cands[int(p.id)%len(cands)]
	case teaming.SrcMAC:
		return cands[int(p.mac[5])%len(cands)]
	default:
		return cands[0]
	}
}

// ipHashUplink picks the uplink of a frame under "route based on IP hash":
// (source IP xor destination IP) modulo the number of active uplinks that
// are up; non-IP frames use the port's team uplink.
func (vs *vswitch) ipHashUplink(p *vmPort, frame []byte) *uplinkPort {
	src, dst, _, _, ok := ipv4(frame)
	if !ok {
		return p.uplink
	}
	var up []*uplinkPort
	for _, name := range p.team.active {
		if u := vs.uplinkByName(name); u != nil && u.nic.up {
			up = append(up, u)
		}
	}
	if len(up) == 0 {
		return p.uplink
	}
	s, d := src.As4(), dst.As4()
	return up[int(s[3]^d[3])%len(up)]
}

// notifySwitch sends the RARP that ESXi emits from a port's team uplink so
// the physical switch learns (or relearns) where the vNIC's MAC lives.
func (n *Network) notifySwitch(p *vmPort, at time.Time) {
	if p.uplink == nil || !p.uplink.nic.up {
		return
	}
	f := arpFrame(etherTypeRARP, 3, broadcastMAC, p.mac, p.mac, netip.IPv4Unspecified(), p.mac, netip.IPv4Unspecified())
	n.uplinkSend(p.uplink, f, p.pg.vlan, at, nil)
}

// SetTeamUplink pins a VM port's team uplink, as a power cycle, vMotion or
// failover would change it. With "notify switches" the host sends a RARP on
// the new uplink so the physical switch relearns the MAC.
func (n *Network) SetTeamUplink(hostName string, portID uint32, uplink string) error {
	var err error
	n.run(func(now time.Time) {
		h := n.hostBy[hostName]
		if h == nil {
			err = fmt.Errorf("lab: unknown host %q", hostName)
			return
		}
		p := h.port(portID)
		if p == nil {
			err = fmt.Errorf("lab: host %s: no VM port %d", hostName, portID)
			return
		}
		u := p.vs.uplinkByName(uplink)
		if u == nil {
			err = fmt.Errorf("lab: host %s: %s is not an uplink of %s", hostName, uplink, p.vs.name)
			return
		}
		p.uplink, p.pinned, p.since = u, true, now
		if p.team.notify {
			n.notifySwitch(p, now)
		}
	})
	return err
}

// SetLink sets a physical NIC's link state; unpinned ports move to another
// uplink as the teaming policy says.
func (n *Network) SetLink(hostName, nicName string, up bool) error {
	var err error
	n.run(func(now time.Time) {
		h := n.hostBy[hostName]
		nic := (*pnic)(nil)
		if h != nil {
			nic = h.nics[nicName]
		}
		if nic == nil {
			err = fmt.Errorf("lab: host %s: no NIC %s", hostName, nicName)
			return
		}
		nic.up = up
		if nic.port == nil {
			return
		}
		vs := nic.port.vs
		for _, p := range vs.ports {
			if p.pinned && p.uplink != nil && p.uplink.nic.up {
				continue
			}
			nu := vs.chooseUplink(p)
			if nu != p.uplink {
				p.uplink, p.since = nu, now
				if p.team.notify {
					n.notifySwitch(p, now)
				}
			}
		}
	})
	return err
}
