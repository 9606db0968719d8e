package pktcap

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

var (
	macA = MAC{0x00, 0x50, 0x56, 0x9d, 0x43, 0x42} // 192.168.100.11 in the article
	macB = MAC{0x00, 0x50, 0x56, 0x9d, 0xfd, 0xb1} // 192.168.100.12
)

// frameOpts describes a synthetic test frame.
type frameOpts struct {
	tags     []uint16 // VIDs of the tags, outermost first
	tpid     uint16   // TPID for the tags (0 = 0x8100)
	ethType  uint16
	proto    uint8
	src, dst [4]byte
	sport    uint16
	dport    uint16
	fragOff  uint16
	vni      uint32 // VXLAN header when proto is UDP and dport 4789/8472
}

func buildFrame(o frameOpts) []byte {
	b := append(append([]byte{}, macB[:]...), macA[:]...)
	tpid := o.tpid
	if tpid == 0 {
		tpid = etherType8021Q
	}
	for _, vid := range o.tags {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, vid)
	}
	b = binary.BigEndian.AppendUint16(b, o.ethType)
	if o.ethType != etherTypeIPv4 {
		return append(b, make([]byte, 46)...)
	}
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[6:], o.fragOff)
	ip[8] = 64
	ip[9] = o.proto
	copy(ip[12:], o.src[:])
	copy(ip[16:], o.dst[:])
	b = append(b, ip...)
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], o.sport)
	binary.BigEndian.PutUint16(l4[2:], o.dport)
	if o.proto == ipProtoUDP {
		l4[8] = 0x08
		l4[12], l4[13], l4[14] = byte(o.vni>>16), byte(o.vni>>8), byte(o.vni)
	}
	return append(b, l4...)
}

func TestFilterMatch(t *testing.T) {
	ip11 := [4]byte{192, 168, 100, 11}
	ip12 := [4]byte{192, 168, 100, 12}
	icmp := frameOpts{ethType: etherTypeIPv4, proto: 1, src: ip11, dst: ip12}
	tcp := frameOpts{ethType: etherTypeIPv4, proto: ipProtoTCP, src: ip11, dst: ip12, sport: 40000, dport: 443}
	udp := frameOpts{ethType: etherTypeIPv4, proto: ipProtoUDP, src: ip11, dst: ip12, sport: 40000, dport: 443}
	vx := frameOpts{ethType: etherTypeIPv4, proto: ipProtoUDP, src: ip11, dst: ip12, sport: 5555, dport: 4789, vni: 5001}
	tagged := func(o frameOpts, vids ...uint16) frameOpts { o.tags = vids; return o }
	arp := frameOpts{ethType: 0x0806}
	pfx := func(s string) Value[netip.Prefix] { return Some(netip.MustParsePrefix(s)) }

	tests := []struct {
		name  string
		f     Filter
		frame frameOpts
		vlan  int
		want  bool
	}{
		{"empty filter", Filter{}, icmp, -1, true},
		{"srcmac", Filter{SrcMAC: Some(macA)}, icmp, -1, true},
		{"srcmac other", Filter{SrcMAC: Some(macB)}, icmp, -1, false},
		{"dstmac", Filter{DstMAC: Some(macB)}, icmp, -1, true},
		{"dstmac other", Filter{DstMAC: Some(macA)}, icmp, -1, false},
		{"mac src", Filter{MAC: Some(macA)}, icmp, -1, true},
		{"mac dst", Filter{MAC: Some(macB)}, icmp, -1, true},
		{"mac neither", Filter{MAC: Some(MAC{1})}, icmp, -1, false},
		{"ethtype", Filter{EthType: Some[uint16](0x0800)}, icmp, -1, true},
		{"ethtype arp", Filter{EthType: Some[uint16](0x0806)}, icmp, -1, false},
		{"ethtype inner of tagged", Filter{EthType: Some[uint16](0x0800)}, tagged(icmp, 100), -1, true},
		{"ethtype tpid of tagged", Filter{EthType: Some[uint16](0x8100)}, tagged(icmp, 100), -1, true},
		{"ethtype tpid of untagged", Filter{EthType: Some[uint16](0x8100)}, icmp, -1, false},
		{"vlan metadata", Filter{VLAN: Some[uint16](100)}, icmp, 100, true},
		{"vlan metadata other", Filter{VLAN: Some[uint16](100)}, icmp, 200, false},
		{"vlan from tag", Filter{VLAN: Some[uint16](100)}, tagged(icmp, 100), -1, true},
		{"vlan outer of qinq", Filter{VLAN: Some[uint16](100)}, tagged(icmp, 100, 200), -1, true},
		{"vlan inner of qinq", Filter{VLAN: Some[uint16](200)}, tagged(icmp, 100, 200), -1, false},
		{"vlan metadata wins", Filter{VLAN: Some[uint16](5)}, tagged(icmp, 100), 5, true},
		{"vlan 0 untagged", Filter{VLAN: Some[uint16](0)}, icmp, -1, true},
		{"vlan 0 tagged", Filter{VLAN: Some[uint16](0)}, tagged(icmp, 100), -1, false},
		{"srcip exact", Filter{SrcIP: pfx("192.168.100.11/32")}, icmp, -1, true},
		{"srcip range", Filter{SrcIP: pfx("192.168.100.0/24")}, icmp, -1, true},
		{"srcip unmasked range", Filter{SrcIP: pfx("192.168.100.77/24")}, icmp, -1, true},
		{"srcip other", Filter{SrcIP: pfx("10.0.0.0/8")}, icmp, -1, false},
		{"srcip tagged", Filter{SrcIP: pfx("192.168.100.11/32")}, tagged(icmp, 100, 200), -1, true},
		{"srcip 802.1ad tagged", Filter{SrcIP: pfx("192.168.100.11/32")}, frameOpts{tpid: etherTypeQinQ, tags: []uint16{7}, ethType: etherTypeIPv4, proto: 1, src: ip11, dst: ip12}, -1, true},
		{"dstip", Filter{DstIP: pfx("192.168.100.12/32")}, icmp, -1, true},
		{"dstip is src", Filter{DstIP: pfx("192.168.100.11/32")}, icmp, -1, false},
		{"ip src", Filter{IP: Some(netip.MustParseAddr("192.168.100.11"))}, icmp, -1, true},
		{"ip dst", Filter{IP: Some(netip.MustParseAddr("192.168.100.12"))}, icmp, -1, true},
		{"ip neither", Filter{IP: Some(netip.MustParseAddr("192.168.100.13"))}, icmp, -1, false},
		{"ip on arp", Filter{IP: Some(netip.MustParseAddr("192.168.100.11"))}, arp, -1, false},
		{"proto icmp", Filter{Proto: Some[uint8](1)}, icmp, -1, true},
		{"proto icmp on tagged", Filter{Proto: Some[uint8](1)}, tagged(icmp, 100), -1, true},
		{"proto tcp on icmp", Filter{Proto: Some[uint8](6)}, icmp, -1, false},
		{"proto on arp", Filter{Proto: Some[uint8](1)}, arp, -1, false},
		{"srcport", Filter{SrcPort: Some[uint16](40000)}, tcp, -1, true},
		{"srcport other", Filter{SrcPort: Some[uint16](443)}, tcp, -1, false},
		{"dstport", Filter{DstPort: Some[uint16](443)}, tcp, -1, true},
		{"dstport tagged", Filter{DstPort: Some[uint16](443)}, tagged(tcp, 100), -1, true},
		{"tcpport src", Filter{TCPPort: Some[uint16](40000)}, tcp, -1, true},
		{"tcpport dst", Filter{TCPPort: Some[uint16](443)}, tcp, -1, true},
		{"tcpport neither", Filter{TCPPort: Some[uint16](22)}, tcp, -1, false},
		{"ports are TCP only", Filter{DstPort: Some[uint16](443)}, udp, -1, false},
		{"no ports in later fragment", Filter{DstPort: Some[uint16](443)}, func() frameOpts { o := tcp; o.fragOff = 100; return o }(), -1, false},
		{"vxlan", Filter{VXLAN: Some[uint32](5001)}, vx, -1, true},
		{"vxlan other vni", Filter{VXLAN: Some[uint32](5002)}, vx, -1, false},
		{"vxlan old port", Filter{VXLAN: Some[uint32](5001)}, func() frameOpts { o := vx; o.dport = 8472; return o }(), -1, true},
		{"vxlan not vxlan port", Filter{VXLAN: Some[uint32](0)}, udp, -1, false},
		{"vxlan on tcp", Filter{VXLAN: Some[uint32](0)}, tcp, -1, false},
		{"and: all match", Filter{SrcMAC: Some(macA), VLAN: Some[uint16](100), Proto: Some[uint8](1), DstIP: pfx("192.168.100.12/32")}, icmp, 100, true},
		{"and: one fails", Filter{SrcMAC: Some(macA), VLAN: Some[uint16](100), Proto: Some[uint8](6)}, icmp, 100, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(buildFrame(tt.frame), tt.vlan); got != tt.want {
			t.Errorf("%s: got %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestFilterMatchShortFrames(t *testing.T) {
	full := buildFrame(frameOpts{tags: []uint16{100}, ethType: etherTypeIPv4, proto: ipProtoTCP, dport: 443})
	f := Filter{DstPort: Some[uint16](443)}
	if !f.Match(full, -1) {
		t.Fatal("full frame does not match")
	}
	for n := 0; n < 18+20+4; n++ { // cut before the TCP ports are complete
		if f.Match(full[:n], -1) {
			t.Errorf("frame cut to %d bytes matches; want no match", n)
		}
	}
	var empty Filter
	if !empty.Match(nil, -1) {
		t.Error("empty filter does not match an empty frame; want match")
	}
}

func TestFilterMatchAllocs(t *testing.T) {
	f := Filter{SrcIP: Some(netip.MustParsePrefix("192.168.100.0/24")), VLAN: Some[uint16](100), TCPPort: Some[uint16](443)}
	frame := buildFrame(frameOpts{ethType: etherTypeIPv4, proto: ipProtoTCP, src: [4]byte{192, 168, 100, 1}, dport: 443})
	if n := testing.AllocsPerRun(100, func() { f.Match(frame, 100) }); n != 0 {
		t.Errorf("got %v allocations per Match; want 0", n)
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	f := Filter{SrcMAC: Some(macA), VLAN: Some[uint16](100), SrcIP: Some(netip.MustParsePrefix("192.168.100.0/24")), Proto: Some[uint8](ipProtoTCP), TCPPort: Some[uint16](443)}
	frame := buildFrame(frameOpts{tags: []uint16{100}, ethType: etherTypeIPv4, proto: ipProtoTCP, src: [4]byte{192, 168, 100, 11}, dport: 443})
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(frame, -1) {
			b.Fatal("no match")
		}
	}
}

func FuzzFilterMatch(f *testing.F) {
	f.Add(buildFrame(frameOpts{tags: []uint16{100, 200}, ethType: etherTypeIPv4, proto: ipProtoTCP, dport: 443}), 100)
	f.Add(buildFrame(frameOpts{ethType: etherTypeIPv4, proto: ipProtoUDP, dport: 4789, vni: 7}), -1)
	f.Add([]byte{}, -1)
	filters := []Filter{
		{},
		{SrcMAC: Some(macA), DstMAC: Some(macB), MAC: Some(macA), EthType: Some[uint16](0x0800), VLAN: Some[uint16](100)},
		{SrcIP: Some(netip.MustParsePrefix("0.0.0.0/0")), DstIP: Some(netip.MustParsePrefix("0.0.0.0/0")), Proto: Some[uint8](6), TCPPort: Some[uint16](443), SrcPort: Some[uint16](0), DstPort: Some[uint16](443)},
		{VXLAN: Some[uint32](7), IP: Some(netip.MustParseAddr("0.0.0.0"))},
	}
	f.Fuzz(func(t *testing.T, frame []byte, vlan int) {
		for i := range filters {
			filters[i].Match(frame, vlan)
		}
	})
}
