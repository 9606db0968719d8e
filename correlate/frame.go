package correlate

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"

	"github.com/capturectl/capturectl/pktcap"
)

// DefaultKeyLen is how many bytes of a frame (after removing VLAN tags) the
// key covers: enough for every header and the start of the payload, and a
// constant cost per frame whatever the frame size.
const DefaultKeyLen = 256

// Key identifies a frame's bytes across capture points: a hash of the
// frame with 802.1Q/802.1ad tags removed (uplink and PortOutput points may
// carry the tag, VnicRx never does), over at most KeyLen bytes, and of the
// untagged wire length. A plain uint64 keeps map lookups on the fast path.
// Keys come from a Correlator's Keyer (the hash is seeded per Correlator).
type Key uint64

// untag returns the frame's header before the tags, the rest after them,
// and the number of tag bytes removed.
func untag(b []byte) (head, rest []byte, tagBytes int) {
	if len(b) < 14 {
		return b, nil, 0
	}
	off := 12
	for off+4 <= len(b)-2 && isTagged(b[off], b[off+1]) {
		off += 4
	}
	return b[:12], b[off:], off - 12
}

func keyOf(seed maphash.Seed, data []byte, origLen, keyLen int) Key {
	if origLen < len(data) {
		origLen = len(data)
	}
	var sum uint64
	if len(data) >= 14 && !isTagged(data[12], data[13]) {
		// the common case: no tag, hash the bytes in place
		sum = maphash.Bytes(seed, data[:min(len(data), keyLen)])
	} else {
		head, rest, tags := untag(data)
		if n := keyLen - len(head); n >= 0 && len(rest) > n {
			rest = rest[:n]
		}
		var buf [DefaultKeyLen]byte
		b := append(append(buf[:0], head...), rest...)
		sum = maphash.Bytes(seed, b)
		origLen -= tags
	}
	// the untagged wire length is mixed in: frames that differ only past
	// the key length but in size stay apart
	return Key(sum ^ uint64(origLen)*0x9e3779b97f4a7c15)
}

func isTagged(hi, lo byte) bool {
	et := uint16(hi)<<8 | uint16(lo)
	return et == 0x8100 || et == 0x88a8 || et == 0x9100
}

// FlowKey describes the frames of one flow: addresses, ethertype (after
// any VLAN tags), and for IPv4 and IPv6 the addresses, the protocol (for
// IPv6 the upper-layer header after any extension headers) and the
// TCP/UDP ports.
type FlowKey struct {
	SrcMAC, DstMAC [6]byte
	EtherType      uint16
	SrcIP, DstIP   netip.Addr
	Proto          uint8
	SrcPort        uint16
	DstPort        uint16
	// ICMPType is the ICMP or ICMPv6 type (8 and 0, or 128 and 129: echo
	// request and reply); it separates requests from replies. -1 otherwise.
	ICMPType int
}

// flowID is FlowKey in a compact, pointer-free form for map keys.
type flowID struct {
	src, dst   [6]byte
	etherType  uint16
	sip, dip   [16]byte // IPv4 in the first 4 bytes
	ipv        uint8    // 0 (not IP), 4 or 6
	proto      uint8
	icmp       int16
	sport, dpt uint16
}

func (f flowID) key() FlowKey {
	k := FlowKey{SrcMAC: f.src, DstMAC: f.dst, EtherType: f.etherType, Proto: f.proto, SrcPort: f.sport, DstPort: f.dpt, ICMPType: int(f.icmp)}
	switch f.ipv {
	case 4:
		k.SrcIP, k.DstIP = netip.AddrFrom4([4]byte(f.sip[:4])), netip.AddrFrom4([4]byte(f.dip[:4]))
	case 6:
		k.SrcIP, k.DstIP = netip.AddrFrom16(f.sip), netip.AddrFrom16(f.dip)
	}
	return k
}

func flowOf(data []byte) flowID {
	var k flowID
	k.icmp = -1
	if len(data) < 14 {
		return k
	}
	copy(k.dst[:], data[0:6])
	copy(k.src[:], data[6:12])
	_, rest, _ := untag(data)
	if len(rest) < 2 {
		return k
	}
	k.etherType = binary.BigEndian.Uint16(rest)
	ip := rest[2:]
	var l4 []byte
	switch {
	case k.etherType == 0x0800 && len(ip) >= 20 && ip[0]>>4 == 4:
		ihl := int(ip[0]&0x0f) * 4
		k.ipv = 4
		k.proto = ip[9]
		copy(k.sip[:], ip[12:16])
		copy(k.dip[:], ip[16:20])
		if ihl < 20 || len(ip) < ihl+4 || binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
			return k // fragments after the first carry no ports
		}
		l4 = ip[ihl:]
	case k.etherType == 0x86dd && len(ip) >= 40 && ip[0]>>4 == 6:
		k.ipv = 6
		copy(k.sip[:], ip[8:24])
		copy(k.dip[:], ip[24:40])
		var ok bool
		if k.proto, l4, ok = ipv6Upper(ip[6], ip[40:]); !ok {
			return k // past the captured head, or a later fragment: no ports
		}
	default:
		return k
	}
	if len(l4) < 4 {
		return k
	}
	switch k.proto {
	case 6, 17:
		k.sport = binary.BigEndian.Uint16(l4[0:])
		k.dpt = binary.BigEndian.Uint16(l4[2:])
	case 1, 58:
		k.icmp = int16(l4[0])
	}
	return k
}

// ipv6Upper follows IPv6 extension headers (hop-by-hop, routing, fragment,
// destination options) from next to the upper-layer header: its protocol
// number and bytes. ok is false when the chain runs past b or the packet
// is a fragment other than the first (the protocol is then the one
// reached).
func ipv6Upper(next uint8, b []byte) (proto uint8, l4 []byte, ok bool) {
	for {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < 8 {
				return next, nil, false
			}
			n := 8 + int(b[1])*8
			if len(b) < n {
				return next, nil, false
			}
			next, b = b[0], b[n:]
		case 44: // fragment
			if len(b) < 8 {
				return next, nil, false
			}
			if binary.BigEndian.Uint16(b[2:4])&0xfff8 != 0 {
				return b[0], nil, false // not the first fragment: no upper header here
			}
			next, b = b[0], b[8:]
		default:
			return next, b, true
		}
	}
}

var protoNames = map[uint8]string{1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMPv6", 112: "VRRP"}

var etherNames = map[uint16]string{0x0806: "ARP", 0x8035: "RARP", 0x86dd: "IPv6", 0x88cc: "LLDP", 0x8809: "LACP"}

// icmpv6Names are the ICMPv6 types worth a name (RFC 4443, 4861).
var icmpv6Names = map[int]string{1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 128: "echo request", 129: "echo reply",
	133: "router solicitation", 134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement"}

// String is a one-line description such as
// "ICMP echo request 192.168.100.11 > 192.168.100.12",
// "UDP [2001:db8::1]:5353 > [ff02::fb]:5353" or
// "ARP 00:50:56:9d:43:42 > ff:ff:ff:ff:ff:ff".
func (k FlowKey) String() string {
	if k.SrcIP.IsValid() {
		p := protoNames[k.Proto]
		if p == "" {
			p = fmt.Sprintf("IP proto %d", k.Proto)
		}
		switch {
		case k.Proto == 1 && k.ICMPType == 8:
			p = "ICMP echo request"
		case k.Proto == 1 && k.ICMPType == 0:
			p = "ICMP echo reply"
		case k.Proto == 1 && k.ICMPType >= 0:
			p = fmt.Sprintf("ICMP type %d", k.ICMPType)
		case k.Proto == 58 && icmpv6Names[k.ICMPType] != "":
			p = "ICMPv6 " + icmpv6Names[k.ICMPType]
		case k.Proto == 58 && k.ICMPType >= 0:
			p = fmt.Sprintf("ICMPv6 type %d", k.ICMPType)
		}
		if k.Proto == 6 || k.Proto == 17 {
			return fmt.Sprintf("%s %s > %s", p, netip.AddrPortFrom(k.SrcIP, k.SrcPort), netip.AddrPortFrom(k.DstIP, k.DstPort))
		}
		return fmt.Sprintf("%s %s > %s", p, k.SrcIP, k.DstIP)
	}
	if k.EtherType == 0 && k.SrcMAC == [6]byte{} && k.DstMAC == [6]byte{} {
		return "frames whose bytes were not captured" // a pasted --trace header without its hex, say
	}
	e := etherNames[k.EtherType]
	if e == "" {
		e = fmt.Sprintf("ethertype 0x%04x", k.EtherType)
	}
	return fmt.Sprintf("%s %s > %s", e, net.HardwareAddr(k.SrcMAC[:]), net.HardwareAddr(k.DstMAC[:]))
}

// PointFromName reads a capture point's name in pktcap's location grammar
// ("HOST/vmnicN/rx", "HOST/vmnicN/tx", "HOST/PORTID/POINT"; the host may
// be left out, and a bare point name is taken too).
func PointFromName(name string) (Point, error) {
	l, err := pktcap.ParseLocation(name)
	if err != nil {
		return Point{}, fmt.Errorf("correlate: %w", err)
	}
	return Point{Name: name, Stage: l.Stage(), Uplink: l.Uplink}, nil
}
