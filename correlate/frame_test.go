package correlate

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// eth builds an Ethernet frame (optionally 802.1Q-tagged) around payload.
func eth(ethertype uint16, vlan int, payload []byte) []byte {
	b := []byte{0x33, 0x33, 0, 0, 0, 1, 0x00, 0x50, 0x56, 0x9d, 0xfd, 0xb1}
	if vlan >= 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, ethertype)
	return append(b, payload...)
}

func ipv6(next uint8, src, dst string, rest []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(rest)))
	h[6], h[7] = next, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, rest...)
}

func udp(sport, dport uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	return append(b, 0, 8, 0, 0)
}

// IPv6 flows are described as IPv4 ones are: addresses, protocol (after
// extension headers), ports, ICMPv6 types.
func TestFlowIPv6(t *testing.T) {
	hopByHop := append([]byte{17, 0}, make([]byte, 6)...) // next UDP, 8 bytes
	firstFrag := []byte{17, 0, 0, 1, 0, 0, 0, 7}          // offset 0, M=1
	laterFrag := []byte{17, 0, 0x05, 0x00, 0, 0, 0, 7}    // offset 160
	tests := []struct {
		frame []byte
		want  string
		proto uint8
		port  uint16
	}{
		{eth(0x86dd, -1, ipv6(58, "fe80::1", "fe80::2", []byte{128, 0, 0, 0})), "ICMPv6 echo request fe80::1 > fe80::2", 58, 0},
		{eth(0x86dd, 100, ipv6(58, "2001:db8::1", "ff02::1:ff00:2", []byte{135, 0, 0, 0})), "ICMPv6 neighbor solicitation 2001:db8::1 > ff02::1:ff00:2", 58, 0},
		{eth(0x86dd, -1, ipv6(17, "2001:db8::1", "ff02::fb", udp(5353, 5353))), "UDP [2001:db8::1]:5353 > [ff02::fb]:5353", 17, 5353},
		{eth(0x86dd, -1, ipv6(0, "2001:db8::1", "2001:db8::2", append(hopByHop, udp(1000, 53)...))), "UDP [2001:db8::1]:1000 > [2001:db8::2]:53", 17, 53},
		{eth(0x86dd, -1, ipv6(44, "2001:db8::1", "2001:db8::2", append(firstFrag, udp(1000, 53)...))), "UDP [2001:db8::1]:1000 > [2001:db8::2]:53", 17, 53},
		{eth(0x86dd, -1, ipv6(44, "2001:db8::1", "2001:db8::2", append(laterFrag, 1, 2, 3, 4))), "UDP [2001:db8::1]:0 > [2001:db8::2]:0", 17, 0},
		{eth(0x86dd, -1, ipv6(0, "2001:db8::1", "2001:db8::2", []byte{17, 9})), "IP proto 0 2001:db8::1 > 2001:db8::2", 0, 0}, // chain cut short
		{eth(0x86dd, -1, []byte{0x60, 0, 0}), "IPv6 00:50:56:9d:fd:b1 > 33:33:00:00:00:01", 0, 0},                             // header cut short
	}
	for _, tt := range tests {
		k := flowOf(tt.frame).key()
		if got := k.String(); got != tt.want || k.Proto != tt.proto || k.DstPort != tt.port {
			t.Errorf("got %q (proto %d, port %d); want %q (%d, %d)", got, k.Proto, k.DstPort, tt.want, tt.proto, tt.port)
		}
	}
	// IPv4 is described as before
	v4 := []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 168, 100, 11, 192, 168, 100, 12}
	if got := flowOf(eth(0x0800, -1, append(v4, udp(40000, 9)...))).key().String(); got != "UDP 192.168.100.11:40000 > 192.168.100.12:9" {
		t.Errorf("IPv4: %q", got)
	}
}

func FuzzFlowOf(f *testing.F) {
	f.Add(eth(0x86dd, -1, ipv6(0, "::1", "::2", []byte{44, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0})))
	f.Add(eth(0x0800, 5, []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		k := flowOf(b).key()
		_ = k.String()
	})
}
