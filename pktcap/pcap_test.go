package pktcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func readAll(t testing.TB, b []byte) (*CaptureReader, []Packet) {
	t.Helper()
	cr, err := NewCaptureReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var ps []Packet
	for {
		p, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return cr, ps
		}
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
}

// countingWriter counts Write calls, to see what is flushed when.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.Buffer.Write(p) }

func TestPcapWriterRoundTrip(t *testing.T) {
	var out countingWriter
	w, err := NewPcapWriter(&out, 64)
	if err != nil {
		t.Fatal(err)
	}
	if out.Len() != 24 {
		t.Fatalf("got %d header bytes flushed; want 24", out.Len())
	}
	w.AutoFlush = true
	t0 := time.Date(2020, 5, 4, 16, 12, 40, 631403000, time.UTC)
	frame := buildFrame(frameOpts{ethType: etherTypeIPv4, proto: 1})
	long := make([]byte, 100)
	for i := range long {
		long[i] = byte(i)
	}
	if err := w.WritePacket(t0, frame, 0); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 24+16+len(frame) {
		t.Errorf("AutoFlush: got %d bytes out after one packet; want %d", out.Len(), 24+16+len(frame))
	}
	if err := w.WritePacket(t0.Add(16*time.Microsecond+999), long, 1514); err != nil {
		t.Fatal(err)
	}
	cr, ps := readAll(t, out.Bytes())
	if cr.Format() != FormatPcap || cr.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("got format %s link type %v; want pcap Ethernet", cr.Format(), cr.LinkType())
	}
	if len(ps) != 2 {
		t.Fatalf("got %d packets; want 2", len(ps))
	}
	if !ps[0].Time.Equal(t0) || !bytes.Equal(ps[0].Data, frame) || ps[0].OrigLen != len(frame) || ps[0].VLAN != -1 {
		t.Errorf("packet 0: got %v len %d orig %d vlan %d", ps[0].Time, len(ps[0].Data), ps[0].OrigLen, ps[0].VLAN)
	}
	// Microsecond resolution drops the 999 ns; snaplen 64 truncates.
	if want := t0.Add(16 * time.Microsecond); !ps[1].Time.Equal(want) {
		t.Errorf("packet 1: got time %v; want %v", ps[1].Time, want)
	}
	if !bytes.Equal(ps[1].Data, long[:64]) || ps[1].OrigLen != 1514 {
		t.Errorf("packet 1: got %d bytes orig %d; want 64 and 1514", len(ps[1].Data), ps[1].OrigLen)
	}
	if _, err := NewPcapWriter(io.Discard, -1); err == nil {
		t.Error("NewPcapWriter(-1): got nil error")
	}
}

// pcapBytes builds a classic pcap file by hand with the given byte order and
// magic, one packet.
func pcapBytes(order binary.AppendByteOrder, magic uint32, sec, frac uint32, data []byte) []byte {
	var b []byte
	b = order.AppendUint32(b, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 65535)
	b = order.AppendUint32(b, 1)
	b = order.AppendUint32(b, sec)
	b = order.AppendUint32(b, frac)
	b = order.AppendUint32(b, uint32(len(data)))
	b = order.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// pcapngBytes builds a pcapng file by hand: SHB, IDB (with if_name and
// if_tsresol), EPB.
func pcapngBytes(order binary.AppendByteOrder, name string, tsresol byte, ts uint64, data []byte) []byte {
	block := func(typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		var b []byte
		b = order.AppendUint32(b, typ)
		b = order.AppendUint32(b, n)
		b = append(b, body...)
		return order.AppendUint32(b, n)
	}
	opt := func(b []byte, code uint16, v []byte) []byte {
		b = order.AppendUint16(b, code)
		b = order.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	var shb []byte
	shb = order.AppendUint32(shb, 0x1a2b3c4d)
	shb = order.AppendUint16(shb, 1)
	shb = order.AppendUint16(shb, 0)
	shb = order.AppendUint64(shb, ^uint64(0))
	var idb []byte
	idb = order.AppendUint16(idb, 1) // Ethernet
	idb = order.AppendUint16(idb, 0)
	idb = order.AppendUint32(idb, 0)
	idb = opt(idb, 2, []byte(name))
	idb = opt(idb, 9, []byte{tsresol})
	idb = append(idb, 0, 0, 0, 0)
	var epb []byte
	epb = order.AppendUint32(epb, 0)
	epb = order.AppendUint32(epb, uint32(ts>>32))
	epb = order.AppendUint32(epb, uint32(ts))
	epb = order.AppendUint32(epb, uint32(len(data)))
	epb = order.AppendUint32(epb, uint32(len(data)))
	epb = append(epb, data...)
	return slices.Concat(block(0x0a0d0d0a, shb), block(1, idb), block(6, epb))
}

func TestCaptureReaderFormats(t *testing.T) {
	data := buildFrame(frameOpts{ethType: etherTypeIPv4, proto: 1})
	want := time.Date(2020, 5, 4, 16, 12, 40, 631403000, time.UTC)
	sec := uint32(want.Unix())
	tests := []struct {
		name   string
		b      []byte
		format Format
		iface  string
	}{
		{"pcap little-endian µs", pcapBytes(binary.LittleEndian, 0xa1b2c3d4, sec, 631403, data), FormatPcap, ""},
		{"pcap big-endian µs", pcapBytes(binary.BigEndian, 0xa1b2c3d4, sec, 631403, data), FormatPcap, ""},
		{"pcap little-endian ns", pcapBytes(binary.LittleEndian, 0xa1b23c4d, sec, 631403000, data), FormatPcap, ""},
		{"pcap big-endian ns", pcapBytes(binary.BigEndian, 0xa1b23c4d, sec, 631403000, data), FormatPcap, ""},
		{"pcapng little-endian µs", pcapngBytes(binary.LittleEndian, "esx01/vmnic2/rx", 6, uint64(want.UnixMicro()), data), FormatPcapNG, "esx01/vmnic2/rx"},
		{"pcapng big-endian µs", pcapngBytes(binary.BigEndian, "esx01/vmnic3/rx", 6, uint64(want.UnixMicro()), data), FormatPcapNG, "esx01/vmnic3/rx"},
		{"pcapng big-endian ns", pcapngBytes(binary.BigEndian, "x", 9, uint64(want.UnixNano()), data), FormatPcapNG, "x"},
	}
	for _, tt := range tests {
		cr, ps := readAll(t, tt.b)
		if cr.Format() != tt.format {
			t.Errorf("%s: got format %s; want %s", tt.name, cr.Format(), tt.format)
		}
		if len(ps) != 1 {
			t.Errorf("%s: got %d packets; want 1", tt.name, len(ps))
			continue
		}
		p := ps[0]
		if !p.Time.Equal(want) || !bytes.Equal(p.Data, data) || p.InterfaceName != tt.iface || p.Interface != 0 {
			t.Errorf("%s: got time %v, %d bytes, interface %d %q; want %v, %d bytes, 0 %q", tt.name, p.Time, len(p.Data), p.Interface, p.InterfaceName, want, len(data), tt.iface)
		}
	}
}

func TestCaptureReaderErrors(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("abc"), []byte("this is not a capture file at all")} {
		if _, err := NewCaptureReader(bytes.NewReader(in)); err == nil {
			t.Errorf("NewCaptureReader(%q): got nil error", in)
		}
	}
	full := pcapBytes(binary.LittleEndian, 0xa1b2c3d4, 1, 2, make([]byte, 60))
	cr, err := NewCaptureReader(bytes.NewReader(full[:len(full)-10]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cr.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("truncated packet: got %v; want an error other than io.EOF", err)
	}
}

func TestNgWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	ifaces := []NgInterface{
		{Name: "esx01/vmnic2/rx", Description: "pktcap-uw --uplink vmnic2 -o -"},
		{Name: "esx01/50331657/PortOutput", Description: "pktcap-uw --switchport 50331657 --capture PortOutput -o -"},
		{Name: "esx01/50331657/VnicRx", Snaplen: 32},
	}
	w, err := NewNgWriter(&buf, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2020, 5, 4, 16, 12, 40, 631403123, time.UTC)
	data := buildFrame(frameOpts{ethType: etherTypeIPv4, proto: 1})
	obs := []Observation{
		{Point: 0, Time: t0, Data: data, OrigLen: len(data), VLAN: 100},
		{Point: 1, Time: t0.Add(16 * time.Microsecond), Data: data, OrigLen: len(data), VLAN: 100},
		{Point: 2, Time: t0.Add(time.Millisecond), Data: data, OrigLen: len(data), VLAN: -1},
	}
	for i, o := range obs {
		var comments []string
		if i == 1 {
			comments = []string{"duplicate of the frame from vmnic3"}
		}
		if err := w.WriteObservation(o, comments...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WritePacket(3, t0, data, 0); err == nil {
		t.Error("WritePacket on interface 3: got nil error")
	}
	if err := w.SetStats(2, NgStats{Start: t0, End: t0.Add(time.Second), Dropped: 7}); err != nil {
		t.Fatal(err)
	}
	if err := w.SetStats(1, NgStats{Start: t0, End: t0.Add(time.Second), DropsUnknown: true}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.WritePacket(0, t0, data, 0); err == nil {
		t.Error("WritePacket after Close: got nil error")
	}

	cr, ps := readAll(t, buf.Bytes())
	if cr.Format() != FormatPcapNG {
		t.Fatalf("got format %s; want pcapng", cr.Format())
	}
	if len(ps) != 3 {
		t.Fatalf("got %d packets; want 3", len(ps))
	}
	for i, p := range ps {
		o := obs[i]
		wantLen := len(data)
		if i == 2 {
			wantLen = 32
		}
		if p.Interface != i || p.InterfaceName != ifaces[i].Name || !p.Time.Equal(o.Time) ||
			len(p.Data) != wantLen || p.OrigLen != len(data) || p.VLAN != o.VLAN {
			t.Errorf("packet %d: got interface %d %q time %v data %d orig %d vlan %d", i, p.Interface, p.InterfaceName, p.Time, len(p.Data), p.OrigLen, p.VLAN)
		}
		if got := p.Observation(); got.Point != i || got.VLAN != o.VLAN {
			t.Errorf("packet %d: Observation got point %d vlan %d", i, got.Point, got.VLAN)
		}
	}
	if want := []string{"vlan=100", "duplicate of the frame from vmnic3"}; !slices.Equal(ps[1].Comments, want) {
		t.Errorf("packet 1 comments: got %q; want %q", ps[1].Comments, want)
	}
	got := cr.Interfaces()
	if len(got) != 3 || got[1].Description != ifaces[1].Description || got[2].Snaplen != 32 {
		t.Errorf("got interfaces %+v", got)
	}

	// The statistics blocks, read with pcapgo directly.
	stats := map[int]pcapgo.NgInterfaceStatistics{}
	r, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.NgReaderOptions{
		StatisticsCallback: func(i int, s pcapgo.NgInterfaceStatistics) { stats[i] = s },
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
	}
	if len(stats) != 3 {
		t.Fatalf("got statistics for %d interfaces; want 3", len(stats))
	}
	if s := stats[2]; s.PacketsDropped != 7 || s.PacketsReceived != 8 || !s.StartTime.Equal(t0) {
		t.Errorf("interface 2 statistics: got %+v; want 7 dropped, 8 received, start %v", s, t0)
	}
	if s := stats[0]; s.PacketsDropped != 0 || s.PacketsReceived != 1 {
		t.Errorf("interface 0 statistics: got %+v; want 0 dropped, 1 received", s)
	}
	// unknown drops: no isb_ifdrop (nor isb_ifrecv), and read back as unknown
	if s := stats[1]; s.PacketsDropped != pcapgo.NgNoValue64 || s.PacketsReceived != pcapgo.NgNoValue64 {
		t.Errorf("interface 1 statistics: got %+v; want no drop and receive counts", s)
	}
	if st := cr.Interfaces()[1].Stats; st == nil || !st.DropsUnknown || st.Dropped != 0 {
		t.Errorf("interface 1 read back: %+v; want drops unknown", st)
	}
	if st := cr.Interfaces()[2].Stats; st == nil || st.DropsUnknown || st.Dropped != 7 {
		t.Errorf("interface 2 read back: %+v; want 7 dropped", st)
	}
	sc, err := NewNgScanner(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, _, _, err := sc.Next(); err != nil {
			break
		}
	}
	if ifs := sc.Interfaces(); len(ifs) != 3 || ifs[1].Stats == nil || !ifs[1].Stats.DropsUnknown || ifs[2].Stats.DropsUnknown || ifs[2].Stats.Dropped != 7 {
		t.Errorf("scanner: interfaces %+v", ifs)
	}
	if _, err := NewNgWriter(io.Discard, nil); err == nil {
		t.Error("NewNgWriter without interfaces: got nil error")
	}
}

func TestVLANComment(t *testing.T) {
	for _, v := range []int{0, 100, 4095} {
		if got, ok := ParseVLANComment(VLANComment(v)); !ok || got != v {
			t.Errorf("VLAN %d: got %d, %v", v, got, ok)
		}
	}
	for _, s := range []string{"vlan=4096", "vlan=", "vlan=-1", "VLAN 100", strings.Repeat("vlan=1", 3)} {
		if _, ok := ParseVLANComment(s); ok {
			t.Errorf("ParseVLANComment(%q): got ok", s)
		}
	}
}

func FuzzReadCapture(f *testing.F) {
	data := buildFrame(frameOpts{ethType: etherTypeIPv4, proto: 1})
	f.Add(pcapBytes(binary.BigEndian, 0xa1b23c4d, 1, 2, data))
	f.Add(pcapngBytes(binary.BigEndian, "esx01/vmnic2/rx", 6, 12345, data))
	var ng bytes.Buffer
	w, err := NewNgWriter(&ng, []NgInterface{{Name: "a"}, {Name: "b"}})
	if err != nil {
		f.Fatal(err)
	}
	_ = w.WritePacket(1, time.Unix(1, 0), data, 0, "vlan=5", "x")
	_ = w.Close()
	f.Add(ng.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		cr, err := NewCaptureReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for range 1000 {
			if _, err := cr.Next(); err != nil {
				return
			}
		}
	})
}
