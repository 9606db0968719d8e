package lab

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Frame building and parsing for the lab's guest stacks. Frames inside the
// lab are untagged Ethernet bytes; the VLAN travels beside them, as it does
// inside a vSwitch (pktcap-uw shows it as "VLAN tag N" metadata).

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeRARP = 0x8035
	etherTypeVLAN = 0x8100

	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

type mac [6]byte

var broadcastMAC = mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (m mac) String() string { return net.HardwareAddr(m[:]).String() }

// isGroup reports a broadcast or multicast address.
func (m mac) isGroup() bool { return m[0]&1 == 1 }

func parseMAC(s string) (mac, bool) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return mac{}, false
	}
	var m mac
	copy(m[:], hw)
	return m, true
}

func dstMAC(f []byte) (m mac) { copy(m[:], f[0:6]); return }
func srcMAC(f []byte) (m mac) { copy(m[:], f[6:12]); return }

func etherType(f []byte) uint16 {
	if len(f) < 14 {
		return 0
	}
	return binary.BigEndian.Uint16(f[12:14])
}

func ethHeader(b []byte, dst, src mac, et uint16) []byte {
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	return binary.BigEndian.AppendUint16(b, et)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// ipv4Header appends a 20-byte IPv4 header with a valid checksum.
func ipv4Header(b []byte, id uint16, proto byte, src, dst netip.Addr, payloadLen int) []byte {
	start := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(20+payloadLen))
	b = binary.BigEndian.AppendUint16(b, id)
	b = append(b, 0, 0, 64, proto, 0, 0)
	s, d := src.As4(), dst.As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	binary.BigEndian.PutUint16(b[start+10:], checksum(b[start:start+20]))
	return b
}

// icmpEcho builds an ICMP echo request (typ 8) or reply (typ 0) frame with
// the 56-byte payload Linux ping sends (8-byte timestamp, then 0x10..0x37),
// 98 bytes in all, like the frames in the article.
func icmpEcho(typ byte, dst, src mac, sip, dip netip.Addr, ipID, ident, seq uint16, payload []byte) []byte {
	b := make([]byte, 0, 14+20+8+len(payload))
	b = ethHeader(b, dst, src, etherTypeIPv4)
	b = ipv4Header(b, ipID, protoICMP, sip, dip, 8+len(payload))
	start := len(b)
	b = append(b, typ, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, ident)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[start+2:], checksum(b[start:]))
	return b
}

// pingPayload is the 56-byte data of a Linux ping: struct timeval
// (seconds, microseconds; little-endian on x86) and a counting pattern.
func pingPayload(sec, usec uint32) []byte {
	p := make([]byte, 56)
	binary.LittleEndian.PutUint32(p[0:], sec)
	binary.LittleEndian.PutUint32(p[8:], usec)
	for i := 16; i < 56; i++ {
		p[i] = byte(i)
	}
	return p
}

// arpFrame builds an ARP (op 1 request, 2 reply) or RARP frame, padded to
// the 60-byte Ethernet minimum.
func arpFrame(et uint16, op uint16, dst, src, sha mac, spa netip.Addr, tha mac, tpa netip.Addr) []byte {
	b := make([]byte, 0, 60)
	b = ethHeader(b, dst, src, et)
	b = append(b, 0, 1, 8, 0, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha[:]...)
	s := spa.As4()
	b = append(b, s[:]...)
	b = append(b, tha[:]...)
	t := tpa.As4()
	b = append(b, t[:]...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// udpFrame builds a UDP datagram frame of the given total frame size
// (at least 60 bytes, the Ethernet minimum without FCS).
func udpFrame(dst, src mac, sip, dip netip.Addr, ipID, sport, dport uint16, size int, seq uint64) []byte {
	if size < 60 {
		size = 60
	}
	payload := size - 14 - 20 - 8
	if payload < 8 {
		payload = 8
	}
	b := make([]byte, 0, 14+20+8+payload)
	b = ethHeader(b, dst, src, etherTypeIPv4)
	b = ipv4Header(b, ipID, protoUDP, sip, dip, 8+payload)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(8+payload))
	b = append(b, 0, 0) // checksum optional in IPv4
	b = binary.BigEndian.AppendUint64(b, seq)
	for len(b) < cap(b) {
		b = append(b, byte(len(b)))
	}
	return b
}

// ipv4 returns the IPv4 header offset, source, destination and protocol of
// an untagged frame.
func ipv4(f []byte) (src, dst netip.Addr, proto byte, l4 []byte, ok bool) {
	if etherType(f) != etherTypeIPv4 || len(f) < 34 {
		return
	}
	ihl := int(f[14]&0x0f) * 4
	if ihl < 20 || len(f) < 14+ihl {
		return
	}
	src = netip.AddrFrom4([4]byte(f[26:30]))
	dst = netip.AddrFrom4([4]byte(f[30:34]))
	return src, dst, f[23], f[14+ihl:], true
}

// arpFields decodes an ARP/RARP body.
func arpFields(f []byte) (op uint16, sha mac, spa netip.Addr, tpa netip.Addr, ok bool) {
	et := etherType(f)
	if (et != etherTypeARP && et != etherTypeRARP) || len(f) < 42 {
		return
	}
	op = binary.BigEndian.Uint16(f[20:22])
	copy(sha[:], f[22:28])
	spa = netip.AddrFrom4([4]byte(f[28:32]))
	tpa = netip.AddrFrom4([4]byte(f[38:42]))
	return op, sha, spa, tpa, true
}
