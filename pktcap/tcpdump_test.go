package pktcap

import (
	"bytes"
	"testing"
	"time"
)

func TestParseTcpdumpHeader(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
		tod  time.Duration
		date string
		n    int
	}{
		// plain tcpdump-uw, as virten.net's transcript (testdata/transcripts/tcpdump-uw)
		{"18:51:00.953859 IP 192.168.222.50 > esx6.virten.lab: ICMP echo request, id 1, seq 130, length 40", true,
			18*time.Hour + 51*time.Minute + 953859*time.Microsecond, "", 0},
		// -e: the frame's length
		{"10:22:52.750213 00:0c:29:2a:32:b0 > 80:71:1f:39:61:c8, ethertype IPv4 (0x0800), length 98: 10.1.1.54 > 10.1.22.2: ICMP echo request, id 20515, seq 38, length 64", true,
			10*time.Hour + 22*time.Minute + 52*time.Second + 750213*time.Microsecond, "", 98},
		{"2020-05-04 16:13:16.471308 00:50:56:9d:43:42 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 192.168.100.12 tell 192.168.100.11, length 46", true,
			16*time.Hour + 13*time.Minute + 16*time.Second + 471308*time.Microsecond, "2020-05-04", 60},
		// -tt: seconds since the epoch
		{"1588608796.471308 00:50:56:9d:43:42 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request", true,
			16*time.Hour + 13*time.Minute + 16*time.Second + 471308*time.Microsecond, "2020-05-04", 60},
		// pktcap-uw's own frame header is not tcpdump's
		{"16:13:16.471308[1] Captured at EtherswitchDispath point, TSO not enabled, length 98", false, 0, "", 0},
		{"Dumped 4 packet to console, dropped 0 packets.", false, 0, "", 0},
		{"12:00:00.123456 ", false, 0, "", 0},
	} {
		h, ok := ParseTcpdumpHeader(tc.line)
		if ok != tc.ok || !ok {
			if ok != tc.ok {
				t.Errorf("%q: ok %v; want %v", tc.line, ok, tc.ok)
			}
			continue
		}
		date := ""
		if !h.At.IsZero() {
			date = h.At.Format("2006-01-02")
			if got := h.At.Sub(h.At.Truncate(24 * time.Hour)); got != h.TimeOfDay {
				t.Errorf("%q: At %v is not at the time of day %v", tc.line, h.At, h.TimeOfDay)
			}
		}
		if h.TimeOfDay != tc.tod || date != tc.date || h.Length != tc.n {
			t.Errorf("%q: %+v; want time %v, date %q, length %d", tc.line, h, tc.tod, tc.date, tc.n)
		}
	}
}

func TestTcpdumpHex(t *testing.T) {
	for _, tc := range []struct {
		line string
		off  int
		data []byte
	}{
		{"\t0x0000:  0050 569d fdb1 0050 569d 4342 0800 4500", 0, []byte{0, 0x50, 0x56, 0x9d, 0xfd, 0xb1, 0, 0x50, 0x56, 0x9d, 0x43, 0x42, 8, 0, 0x45, 0}},
		// -XX: the ASCII column after two spaces, which may hold anything
		{"\t0x0010:  0054 cefe 0000 8001 4071 0a01 0136 0a01  .T......@q...6..", 16, []byte{0, 0x54, 0xce, 0xfe, 0, 0, 0x80, 1, 0x40, 0x71, 0x0a, 1, 1, 0x36, 0x0a, 1}},
		{"0x0020:  1602 08  ...", 32, []byte{0x16, 2, 8}},
		{"        0x0030:  abcd  ab cd ef 0123", 48, []byte{0xab, 0xcd}},
	} {
		off, data, ok := TcpdumpHex(tc.line)
		if !ok || off != tc.off || !bytes.Equal(data, tc.data) {
			t.Errorf("%q: %d % x %v; want %d % x", tc.line, off, data, ok, tc.off, tc.data)
		}
	}
	for _, bad := range []string{"0x:  0050", "0x0000:", "0x0000:  005", "0x0000:  zz50", "hello"} {
		if _, _, ok := TcpdumpHex(bad); ok {
			t.Errorf("%q: read as a hex line", bad)
		}
	}
}

func TestHasLinkHeader(t *testing.T) {
	eth := []byte{0, 0x50, 0x56, 0x9d, 0xfd, 0xb1, 0, 0x50, 0x56, 0x9d, 0x43, 0x42, 8, 0, 0x45, 0}
	ip := []byte{0x45, 0, 0, 0x54, 0xce, 0xfe, 0, 0, 0x40, 1, 0x40, 0x71, 0xc0, 0xa8, 0x64, 0x0b}
	if !HasLinkHeader(eth) || HasLinkHeader(ip) || HasLinkHeader(eth[:13]) {
		t.Errorf("HasLinkHeader: Ethernet %v, IP %v, short %v; want true, false, false", HasLinkHeader(eth), HasLinkHeader(ip), HasLinkHeader(eth[:13]))
	}
}

// FuzzTcpdumpText: the tcpdump readers never panic, and a hex line read
// gives some bytes, never more than its text can hold.
func FuzzTcpdumpText(f *testing.F) {
	f.Add("\t0x0010:  0054 cefe 0000 8001 4071 0a01 0136 0a01  .T......@q...6..")
	f.Add("2020-05-04 16:13:16.471308 00:50:56:9d:43:42 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: x")
	f.Fuzz(func(t *testing.T, line string) {
		ParseTcpdumpHeader(line)
		if _, data, ok := TcpdumpHex(line); ok && (len(data) == 0 || len(data) > 2*len(line)) {
			t.Errorf("%q: % x", line, data)
		}
	})
}
