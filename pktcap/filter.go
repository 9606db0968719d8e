package pktcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// MAC is an Ethernet address.
type MAC [6]byte

// ParseMAC parses xx:xx:xx:xx:xx:xx (also with "-" separators, as Go's
// net.ParseMAC does); only 6-byte addresses are accepted.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, errors.New("want a MAC address xx:xx:xx:xx:xx:xx")
	}
	return MAC(hw), nil
}

// String returns the lower-case colon form.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// parseIPv4Prefix parses x.x.x.x or x.x.x.x/len. The prefix is kept as
// typed (not masked) so that it prints back the same.
func parseIPv4Prefix(s string) (netip.Prefix, error) {
	const want = "want an IPv4 address x.x.x.x[/len]"
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			p, err := netip.ParsePrefix(s)
			if err != nil || !p.Addr().Is4() {
				return netip.Prefix{}, errors.New(want)
			}
			return p, nil
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, errors.New(want)
	}
	return netip.PrefixFrom(a, 32), nil
}

func formatPrefix(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.String()
}

// Filter holds pktcap-uw's flow filter options. Every set filter must match
// (they are ANDed; pktcap-uw has no OR).
type Filter struct {
	SrcMAC  Value[MAC]          // --srcmac
	DstMAC  Value[MAC]          // --dstmac
	MAC     Value[MAC]          // --mac: source or destination
	EthType Value[uint16]       // --ethtype 0xHHHH
	VLAN    Value[uint16]       // --vlan 0..4095
	SrcIP   Value[netip.Prefix] // --srcip x.x.x.x[/len]
	DstIP   Value[netip.Prefix] // --dstip x.x.x.x[/len]
	IP      Value[netip.Addr]   // --ip x.x.x.x: source or destination
	Proto   Value[uint8]        // --proto 0xHH (IPv4 protocol)
	SrcPort Value[uint16]       // --srcport (TCP)
	DstPort Value[uint16]       // --dstport (TCP)
	TCPPort Value[uint16]       // --tcpport (TCP, source or destination)
	VXLAN   Value[uint32]       // --vxlan <VNI>
}

// IsZero reports whether no filter is set.
func (f *Filter) IsZero() bool { return *f == Filter{} }

// Validate checks values that a Filter built in code (not by ParseArgs)
// could get wrong.
func (f *Filter) Validate() error {
	var errs []error
	if v, ok := f.VLAN.Get(); ok && v > 4095 {
		errs = append(errs, fmt.Errorf("pktcap: option --vlan: bad value %d: want 0..4095", v))
	}
	if v, ok := f.VXLAN.Get(); ok && v > 1<<24-1 {
		errs = append(errs, fmt.Errorf("pktcap: option --vxlan: bad value %d: want 0..16777215", v))
	}
	for _, p := range []struct {
		name string
		v    Value[netip.Prefix]
	}{{"--srcip", f.SrcIP}, {"--dstip", f.DstIP}} {
		if p.v.Set && (!p.v.V.IsValid() || !p.v.V.Addr().Is4()) {
			errs = append(errs, fmt.Errorf("pktcap: option %s: bad value %q: want x.x.x.x[/len]", p.name, p.v.V.String()))
		}
	}
	if f.IP.Set && !f.IP.V.Is4() {
		errs = append(errs, fmt.Errorf("pktcap: option --ip: bad value %q: want x.x.x.x", f.IP.V.String()))
	}
	return errors.Join(errs...)
}

// appendArgs appends the filter options in the help text's order.
func (f *Filter) appendArgs(a []string) []string {
	if v, ok := f.SrcMAC.Get(); ok {
		a = append(a, "--srcmac", v.String())
	}
	if v, ok := f.DstMAC.Get(); ok {
		a = append(a, "--dstmac", v.String())
	}
	if v, ok := f.MAC.Get(); ok {
		a = append(a, "--mac", v.String())
	}
	if v, ok := f.EthType.Get(); ok {
		a = append(a, "--ethtype", fmt.Sprintf("0x%04x", v))
	}
	if v, ok := f.VLAN.Get(); ok {
		a = append(a, "--vlan", strconv.Itoa(int(v)))
	}
	if v, ok := f.SrcIP.Get(); ok {
		a = append(a, "--srcip", formatPrefix(v))
	}
	if v, ok := f.DstIP.Get(); ok {
		a = append(a, "--dstip", formatPrefix(v))
	}
	if v, ok := f.IP.Get(); ok {
		a = append(a, "--ip", v.String())
	}
	if v, ok := f.Proto.Get(); ok {
		a = append(a, "--proto", fmt.Sprintf("0x%02x", v))
	}
	if v, ok := f.SrcPort.Get(); ok {
		a = append(a, "--srcport", strconv.Itoa(int(v)))
	}
	if v, ok := f.DstPort.Get(); ok {
		a = append(a, "--dstport", strconv.Itoa(int(v)))
	}
	if v, ok := f.TCPPort.Get(); ok {
		a = append(a, "--tcpport", strconv.Itoa(int(v)))
	}
	if v, ok := f.VXLAN.Get(); ok {
		a = append(a, "--vxlan", strconv.FormatUint(uint64(v), 10))
	}
	return a
}

// Ethernet and IP constants used by Match.
const (
	etherTypeIPv4  = 0x0800
	etherType8021Q = 0x8100
	etherTypeQinQ  = 0x88a8
	etherType9100  = 0x9100 // pre-standard QinQ
	ipProtoTCP     = 6
	ipProtoUDP     = 17
	vxlanPort      = 4789 // IANA
	vxlanPortOld   = 8472 // NSX-v before 6.2.3 and Linux's default
)

// Match reports whether frame passes every set filter. frame is the
// Ethernet frame as captured (it may or may not carry 802.1Q/802.1ad tags;
// when it does, the ethertype and IP filters apply to what follows the
// tags). vlan is the capture point's VLAN metadata ("VLAN tag 100" in the
// console output), -1 when the point has none. Match does not allocate.
//
// Semantics chosen here (the real tool's are not documented):
//   - --vlan compares the frame's VLAN: the vlan argument when >= 0, else
//     the VID of the outermost tag in the bytes, else 0 (untagged, as ESXi's
//     VLAN ID 0 means "no tag"), so --vlan 0 selects untagged frames.
//   - --ethtype matches the ethertype after the tags, or a tag's TPID (so
//     --ethtype 0x8100 selects tagged frames).
//   - IP filters and --proto apply to IPv4 only (the tool takes x.x.x.x);
//     a non-IPv4 frame never matches them.
//   - --srcport, --dstport and --tcpport match TCP only: the 6.0-era help
//     text calls them "The TCP source port", "The TCP destination port" and
//     "The TCP port(src or dst)", and no better evidence was found (8.0.3
//     has a separate --udpport, which fits). Non-first IPv4 fragments carry
//     no ports and never match them.
//   - --vxlan matches an IPv4/UDP frame to port 4789 or 8472 whose VXLAN
//     header has the I flag and this VNI; the other filters still apply to
//     the outer headers.
func (f *Filter) Match(frame []byte, vlan int) bool {
	if len(frame) < 14 {
		return f.IsZero()
	}
	if f.DstMAC.Set && [6]byte(frame[0:6]) != f.DstMAC.V {
		return false
	}
	if f.SrcMAC.Set && [6]byte(frame[6:12]) != f.SrcMAC.V {
		return false
	}
	if f.MAC.Set && [6]byte(frame[0:6]) != f.MAC.V && [6]byte(frame[6:12]) != f.MAC.V {
		return false
	}
	off := 12
	et := binary.BigEndian.Uint16(frame[off:])
	frameVLAN := -1
	tpidMatch := false
	for tags := 0; (et == etherType8021Q || et == etherTypeQinQ || et == etherType9100) && tags < 4; tags++ {
		if f.EthType.Set && et == f.EthType.V {
			tpidMatch = true
		}
		if len(frame) < off+6 {
			return false
		}
		if frameVLAN < 0 {
			frameVLAN = int(binary.BigEndian.Uint16(frame[off+2:]) & 0x0fff)
		}
		off += 4
		et = binary.BigEndian.Uint16(frame[off:])
	}
	off += 2 // payload after the (inner) ethertype
	if f.EthType.Set && et != f.EthType.V && !tpidMatch {
		return false
	}
	if f.VLAN.Set {
		v := vlan
		if v < 0 {
			v = frameVLAN
		}
		if v < 0 {
			v = 0
		}
		if v != int(f.VLAN.V) {
			return false
		}
	}
	needIP := f.SrcIP.Set || f.DstIP.Set || f.IP.Set || f.Proto.Set ||
		f.SrcPort.Set || f.DstPort.Set || f.TCPPort.Set || f.VXLAN.Set
	if !needIP {
		return true
	}
	if et != etherTypeIPv4 {
		return false
	}
	ip := frame[off:]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return false
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl {
		return false
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	if f.SrcIP.Set && !f.SrcIP.V.Contains(src) {
		return false
	}
	if f.DstIP.Set && !f.DstIP.V.Contains(dst) {
		return false
	}
	if f.IP.Set && src != f.IP.V && dst != f.IP.V {
		return false
	}
	proto := ip[9]
	if f.Proto.Set && proto != f.Proto.V {
		return false
	}
	needPorts := f.SrcPort.Set || f.DstPort.Set || f.TCPPort.Set
	if !needPorts && !f.VXLAN.Set {
		return true
	}
	firstFragment := binary.BigEndian.Uint16(ip[6:])&0x1fff == 0
	l4 := ip[ihl:]
	if needPorts {
		if proto != ipProtoTCP || !firstFragment || len(l4) < 4 {
			return false
		}
		sp, dp := binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		if f.SrcPort.Set && sp != f.SrcPort.V {
			return false
		}
		if f.DstPort.Set && dp != f.DstPort.V {
			return false
		}
		if f.TCPPort.Set && sp != f.TCPPort.V && dp != f.TCPPort.V {
			return false
		}
	}
	if f.VXLAN.Set {
		if proto != ipProtoUDP || !firstFragment || len(l4) < 16 {
			return false
		}
		dp := binary.BigEndian.Uint16(l4[2:])
		if dp != vxlanPort && dp != vxlanPortOld {
			return false
		}
		vx := l4[8:]
		if vx[0]&0x08 == 0 {
			return false
		}
		vni := uint32(vx[4])<<16 | uint32(vx[5])<<8 | uint32(vx[6])
		if vni != f.VXLAN.V {
			return false
		}
	}
	return true
}
