package pktcap

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// TcpdumpHeader is the first line tcpdump (ESXi's tcpdump-uw too) prints
// of a packet, as in
//
//	pktcap-uw --uplink vmnic2 -o - | tcpdump-uw -r - -nne -xx
//	18:51:00.953859 00:50:56:9d:43:42 > 00:50:56:9d:fd:b1, ethertype IPv4 (0x0800), length 98: 192.168.100.11 > 192.168.100.12: ICMP echo request, id 1, seq 130, length 64
//	        0x0000:  0050 569d fdb1 0050 569d 4342 0800 4500
//
// With -xx or -XX the lines after it hold the frame's bytes, link header
// included (TcpdumpHex reads them); plain tcpdump prints none, and -x or
// -X print them without the Ethernet header.
type TcpdumpHeader struct {
	// At is the time when the line gives a date (-tttt) or seconds since
	// the epoch (-tt), zero when it gives only the time of day (the
	// default: TimeOfDay).
	At        time.Time
	TimeOfDay time.Duration
	// Length is the frame's length as -e prints it ("ethertype IPv4
	// (0x0800), length 98:"), 0 without -e.
	Length int
}

var (
	reTcpdumpHead  = regexp.MustCompile(`^(\d{4}-\d\d-\d\d )?(\d\d:\d\d:\d\d\.\d{6,9}) (.*)$`)
	reTcpdumpEpoch = regexp.MustCompile(`^(\d{9,11})\.(\d{6}|\d{9}) (.*)$`)
	reTcpdumpLen   = regexp.MustCompile(`, ethertype [^,]*, length (\d+)(:|$)`)
)

// ParseTcpdumpHeader reads a tcpdump packet line: a time stamp (HH:MM:SS
// with 6 to 9 digits of fraction, after a date with -tttt) and a
// description. It does not take pktcap-uw's own frame headers ("... [1]
// Captured at ...").
func ParseTcpdumpHeader(line string) (TcpdumpHeader, bool) {
	line = strings.TrimRight(line, " \t\r")
	if m := reTcpdumpEpoch.FindStringSubmatch(line); m != nil && !strings.Contains(m[3], "Captured at ") {
		sec, err1 := strconv.ParseInt(m[1], 10, 64)
		frac, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil {
			return TcpdumpHeader{}, false
		}
		if len(m[2]) == 6 {
			frac *= 1000
		}
		h := TcpdumpHeader{At: time.Unix(sec, frac).UTC()}
		h.TimeOfDay = h.At.Sub(h.At.Truncate(24 * time.Hour))
		h.Length = tcpdumpLength(m[3])
		return h, true
	}
	m := reTcpdumpHead.FindStringSubmatch(line)
	if m == nil || strings.Contains(m[3], "Captured at ") || strings.TrimSpace(m[3]) == "" {
		return TcpdumpHeader{}, false
	}
	tod, ok := parseClock(m[2])
	if !ok {
		return TcpdumpHeader{}, false
	}
	h := TcpdumpHeader{TimeOfDay: tod}
	if m[1] != "" {
		d, err := time.Parse("2006-01-02", strings.TrimSpace(m[1]))
		if err != nil {
			return TcpdumpHeader{}, false
		}
		h.At = d.Add(tod)
	}
	h.Length = tcpdumpLength(m[3])
	return h, true
}

// tcpdumpLength is the frame length -e prints, 0 if none.
func tcpdumpLength(desc string) int {
	if l := reTcpdumpLen.FindStringSubmatch(desc); l != nil {
		n, _ := strconv.Atoi(l[1])
		return n
	}
	return 0
}

// TcpdumpHex reads a hex line of tcpdump -x, -xx, -X or -XX: an offset
// ("0x0010:"), then groups of four hex digits (two for a last odd byte)
// separated by one space, and with -X/-XX the bytes as ASCII after two
// spaces. It returns the offset and the bytes.
func TcpdumpHex(line string) (offset int, data []byte, ok bool) {
	s := strings.TrimLeft(line, " \t")
	colon := strings.IndexByte(s, ':')
	if colon < 3 || !strings.HasPrefix(s, "0x") {
		return 0, nil, false
	}
	off, err := strconv.ParseUint(s[2:colon], 16, 32)
	if err != nil {
		return 0, nil, false
	}
	rest := strings.TrimLeft(s[colon+1:], " ")
	for rest != "" {
		n := 0
		for n < len(rest) && n < 4 && isHex(rest[n]) {
			n++
		}
		if n == 0 || n%2 != 0 || (n < len(rest) && rest[n] != ' ') {
			return 0, nil, false
		}
		for i := 0; i < n; i += 2 {
			hi, _ := unhex(rest[i])
			lo, _ := unhex(rest[i+1])
			data = append(data, hi<<4|lo)
		}
		rest = rest[n:]
		// one space: another group; two or more: the ASCII column
		if len(rest) < 2 || rest[0] != ' ' || rest[1] == ' ' {
			break
		}
		rest = rest[1:]
		if n < 4 { // a short group ends the line's bytes
			break
		}
	}
	if len(data) == 0 {
		return 0, nil, false
	}
	return int(off), data, true
}

func isHex(c byte) bool { _, ok := unhex(c); return ok }

// HasLinkHeader says whether data, a frame tcpdump printed in hex, starts
// with its Ethernet header (-xx, -XX) rather than with the network layer
// (-x, -X): an EtherType (IPv4, IPv6, ARP, 802.1Q, 802.1ad) at bytes 12-13.
func HasLinkHeader(data []byte) bool {
	if len(data) < 14 {
		return false
	}
	switch uint16(data[12])<<8 | uint16(data[13]) {
	case 0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x8035, 0x88cc:
		return true
	}
	return false
}
