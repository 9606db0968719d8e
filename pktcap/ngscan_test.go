package pktcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// sampleNg writes a pcapng with pcapgo: three interfaces with microsecond,
// nanosecond and 2^-20 s resolutions (one with a time offset), packets
// interleaved, comments, and statistics at the end.
func sampleNg(t testing.TB) []byte {
	var b bytes.Buffer
	ifaces := []pcapgo.NgInterface{
		{Name: "esx01/vmnic2/rx", LinkType: layers.LinkTypeEthernet, TimestampResolution: 6},
		{Name: "esx01/7/PortOutput", LinkType: layers.LinkTypeEthernet, TimestampResolution: 9, TimestampOffset: 100},
		{Name: "esx01/7/VnicRx", LinkType: layers.LinkTypeEthernet, TimestampResolution: 0x80 | 20},
	}
	w, err := pcapgo.NewNgWriterInterface(&b, ifaces[0], pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifaces[1:] {
		if _, err := w.AddInterface(i); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for i := range 30 {
		data := bytes.Repeat([]byte{byte(i)}, 60+i)
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 1500 * time.Microsecond), CaptureLength: len(data), Length: len(data) + i%2, InterfaceIndex: i % 3}
		if i%5 == 0 {
			err = w.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Comments: []string{"vlan=100"}})
		} else {
			err = w.WritePacket(ci, data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range ifaces {
		st := pcapgo.NgInterfaceStatistics{StartTime: t0.Add(-time.Second), EndTime: t0.Add(time.Minute), PacketsDropped: uint64(i), PacketsReceived: pcapgo.NgNoValue64}
		if err := w.WriteInterfaceStats(i, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type ngPacket struct {
	iface   int
	ns      int64
	data    []byte
	origLen int
}

func scanAll(t testing.TB, in []byte, want func(int) bool) ([]ngPacket, *NgScanner, error) {
	s, err := NewNgScanner(bytes.NewReader(in))
	if err != nil {
		return nil, nil, err
	}
	s.Want = want
	var out []ngPacket
	for {
		id, ns, data, orig, err := s.Next()
		if err != nil {
			return out, s, err
		}
		out = append(out, ngPacket{id, ns, bytes.Clone(data), orig})
	}
}

func TestNgScannerMatchesPcapgo(t *testing.T) {
	in := sampleNg(t)
	got, s, err := scanAll(t, in, nil)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(in), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if n >= len(got) {
			t.Fatalf("scanner read %d packets; pcapgo more", len(got))
		}
		g := got[n]
		if g.iface != ci.InterfaceIndex || g.ns != ci.Timestamp.UnixNano() || !bytes.Equal(g.data, data) || g.origLen != ci.Length {
			t.Errorf("packet %d: iface %d time %d len %d/%d; pcapgo iface %d time %d len %d/%d", n, g.iface, g.ns, len(g.data), g.origLen,
				ci.InterfaceIndex, ci.Timestamp.UnixNano(), len(data), ci.Length)
		}
	}
	if n != len(got) || n != 30 {
		t.Fatalf("scanner read %d packets, pcapgo %d; want 30", len(got), n)
	}
	ifs := s.Interfaces()
	if len(ifs) != 3 || ifs[1].Name != "esx01/7/PortOutput" {
		t.Fatalf("interfaces %+v", ifs)
	}
	for i, intf := range ifs {
		want, _ := r.Interface(i)
		if intf.Stats == nil || !intf.Stats.Start.Equal(want.Statistics.StartTime) || !intf.Stats.End.Equal(want.Statistics.EndTime) || intf.Stats.Dropped != uint64(i) {
			t.Errorf("interface %d stats %+v; pcapgo %+v", i, intf.Stats, want.Statistics)
		}
	}
	// Want selects interfaces; the others are skipped
	only, _, _ := scanAll(t, in, func(i int) bool { return i == 2 })
	if len(only) != 10 || only[0].iface != 2 || only[0].ns != got[2].ns {
		t.Errorf("interface 2 alone: %d packets", len(only))
	}
}

// A big-endian file (as written on a big-endian host) reads the same.
func TestNgScannerBigEndian(t *testing.T) {
	var b bytes.Buffer
	be := binary.BigEndian
	block := func(typ uint32, body []byte) {
		n := uint32(12 + len(body))
		binary.Write(&b, be, typ)
		binary.Write(&b, be, n)
		b.Write(body)
		binary.Write(&b, be, n)
	}
	shb := make([]byte, 16)
	be.PutUint32(shb, 0x1a2b3c4d)
	be.PutUint16(shb[4:], 1)
	be.PutUint64(shb[8:], ^uint64(0))
	block(0x0a0d0d0a, shb)
	idb := make([]byte, 8, 24)
	be.PutUint16(idb, 1)
	idb = append(idb, 0, 2, 0, 4, 'e', 't', 'h', '0', 0, 9, 0, 1, 9, 0, 0, 0, 0, 0, 0, 0)
	block(1, idb)
	epb := make([]byte, 20+60)
	ts := uint64(time.Date(2026, 11, 29, 1, 2, 3, 4, time.UTC).UnixNano())
	be.PutUint32(epb[4:], uint32(ts>>32))
	be.PutUint32(epb[8:], uint32(ts))
	be.PutUint32(epb[12:], 60)
	be.PutUint32(epb[16:], 64)
	epb[20] = 0xaa
	block(6, epb)
	got, s, err := scanAll(t, b.Bytes(), nil)
	if err != io.EOF || len(got) != 1 || got[0].ns != int64(ts) || got[0].origLen != 64 || got[0].data[0] != 0xaa || s.Interfaces()[0].Name != "eth0" {
		t.Fatalf("got %+v, %v", got, err)
	}
	// cut anywhere inside the packet block: the packets before it, then
	// an unexpected EOF
	whole := b.Bytes()
	for n := len(whole) - len(epb) - 12 + 1; n < len(whole); n++ {
		if got, _, err := scanAll(t, whole[:n], nil); len(got) != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %d packets, %v", n, len(got), err)
		}
	}
}

func TestNgScannerRejects(t *testing.T) {
	in := sampleNg(t)
	bad := bytes.Clone(in)
	binary.LittleEndian.PutUint32(bad[4:], 13) // section header length
	for name, b := range map[string][]byte{
		"not pcapng": []byte("hello, world"),
		"length":     bad,
		"empty":      nil,
	} {
		if _, _, err := scanAll(t, b, nil); err == nil || err == io.EOF {
			t.Errorf("%s: %v; want an error", name, err)
		}
	}
}

func FuzzNgScanner(f *testing.F) {
	f.Add(sampleNg(f))
	f.Fuzz(func(t *testing.T, in []byte) {
		all, _, _ := scanAll(t, in, nil)
		// the packets of each interface alone are those of the whole scan
		for iface := range 3 {
			only, _, _ := scanAll(t, in, func(i int) bool { return i == iface })
			k := 0
			for _, p := range all {
				if p.iface != iface {
					continue
				}
				if k >= len(only) || only[k].ns != p.ns || !bytes.Equal(only[k].data, p.data) {
					t.Fatalf("interface %d: packet %d differs between the whole scan and the selective one", iface, k)
				}
				k++
			}
		}
	})
}

// Applications names what wrote each section (shb_userappl), once per
// section: the files capturectl writes say capturectl; two joined with
// cat are two sections.
func TestNgScannerApplications(t *testing.T) {
	var b bytes.Buffer
	w, err := NewNgWriter(&b, []NgInterface{{Name: "esx01/vmnic2/rx"}})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	two := append(bytes.Clone(b.Bytes()), b.Bytes()...)
	sc, err := NewNgScanner(bytes.NewReader(two))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, _, _, err := sc.Next(); err != nil {
			break
		}
	}
	if got := sc.Applications(); len(got) != 2 || got[0] != "capturectl" || got[1] != "capturectl" {
		t.Errorf("applications %q; want capturectl for each of 2 sections", got)
	}
}
