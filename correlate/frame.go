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
// any VLAN tags), and for IPv4 the protocol and TCP/UDP ports.
type FlowKey struct {
	SrcMAC, DstMAC [6]byte
	EtherType      uint16
	SrcIP, DstIP   netip.Addr
	Proto          uint8
	SrcPort        uint16
	DstPort        uint16
	// ICMPType is the ICMP type for ICMP (8 echo request, 0 echo reply);
	// it separates requests from replies. -1 otherwise.
	ICMPType int
}

// flowID is FlowKey in a compact, pointer-free form for map keys.
type flowID struct {
	src, dst   [6]byte
	etherType  uint16
	sip, dip   [4]byte
	ip         bool
	proto      uint8
	icmp       int16
	sport, dpt uint16
}

func (f flowID) key() FlowKey {
	k := FlowKey{SrcMAC: f.src, DstMAC: f.dst, EtherType: f.etherType, Proto: f.proto, SrcPort: f.sport, DstPort: f.dpt, ICMPType: int(f.icmp)}
	if f.ip {
		k.SrcIP, k.DstIP = netip.AddrFrom4(f.sip), netip.AddrFrom4(f.dip)
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
	if k.etherType != 0x0800 || len(ip) < 20 || ip[0]>>4 != 4 {
		return k
	}
	ihl := int(ip[0]&0x0f) * 4
	k.ip = true
	k.proto = ip[9]
	k.sip = [4]byte(ip[12:16])
	k.dip = [4]byte(ip[16:20])
	if ihl < 20 || len(ip) < ihl+4 || binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return k // fragments after the first carry no ports
	}
	l4 := ip[ihl:]
	switch k.proto {
	case 6, 17:
		k.sport = binary.BigEndian.Uint16(l4[0:])
		k.dpt = binary.BigEndian.Uint16(l4[2:])
	case 1:
		k.icmp = int16(l4[0])
	}
	return k
}

var protoNames = map[uint8]string{1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMPv6", 112: "VRRP"}

var etherNames = map[uint16]string{0x0806: "ARP", 0x8035: "RARP", 0x86dd: "IPv6", 0x88cc: "LLDP", 0x8809: "LACP"}

// String is a one-line description such as
// "ICMP echo request 192.168.100.11 > 192.168.100.12" or
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
		}
		if k.Proto == 6 || k.Proto == 17 {
			return fmt.Sprintf("%s %s:%d > %s:%d", p, k.SrcIP, k.SrcPort, k.DstIP, k.DstPort)
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
