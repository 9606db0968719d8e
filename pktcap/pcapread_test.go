package pktcap

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

type readResult struct {
	ns      []int64
	data    [][]byte
	origLen []int
	end     string // "eof", "unexpected" or "error"
}

func endKind(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected"
	}
	return "error"
}

func readOurs(in []byte, bufSize int, r io.Reader) (res readResult, headerErr error) {
	if r == nil {
		r = bytes.NewReader(in)
	}
	p, err := newPcapReader(r, bufSize)
	if err != nil {
		return res, err
	}
	for {
		ns, data, orig, err := p.Next()
		if err != nil {
			res.end = endKind(err)
			return res, nil
		}
		res.ns = append(res.ns, ns)
		res.data = append(res.data, bytes.Clone(data))
		res.origLen = append(res.origLen, orig)
	}
}

func readPcapgo(in []byte) (res readResult, headerErr error) {
	p, err := pcapgo.NewReader(bytes.NewReader(in))
	if err != nil {
		return res, err
	}
	for {
		data, ci, err := p.ReadPacketData()
		if err != nil {
			res.end = endKind(err)
			return res, nil
		}
		res.ns = append(res.ns, ci.Timestamp.UnixNano())
		res.data = append(res.data, data)
		res.origLen = append(res.origLen, ci.Length)
	}
}

// compareReaders checks that PcapReader reads what pcapgo.Reader reads.
// Timestamps are compared where the fraction is valid (pcapgo's uint32
// arithmetic wraps on fractions of a second above 2^32 ns).
func compareReaders(t *testing.T, in []byte, bufSize int) {
	t.Helper()
	want, werr := readPcapgo(in)
	got, gerr := readOurs(in, bufSize, nil)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("header: pcapgo err %v, ours %v", werr, gerr)
	}
	if werr != nil {
		return
	}
	// pcapgo says EOF for a stream cut right after a record header; that is
	// an unexpected EOF (checked in TestPcapReaderMatchesPcapgo)
	if len(got.data) != len(want.data) || (got.end != want.end && !(got.end == "unexpected" && want.end == "eof")) {
		t.Fatalf("read %d packets ending %s; pcapgo read %d ending %s", len(got.data), got.end, len(want.data), want.end)
	}
	for i := range want.data {
		if !bytes.Equal(got.data[i], want.data[i]) || got.origLen[i] != want.origLen[i] {
			t.Fatalf("packet %d: %x (len %d); pcapgo %x (len %d)", i, got.data[i], got.origLen[i], want.data[i], want.origLen[i])
		}
		if got.ns[i] != want.ns[i] && got.ns[i]%1e9 == want.ns[i]%1e9 {
			t.Fatalf("packet %d: time %d; pcapgo %d", i, got.ns[i], want.ns[i])
		}
	}
}

func samplePcap(t testing.TB, nanos bool, sizes ...int) []byte {
	var b bytes.Buffer
	var w *pcapgo.Writer
	if nanos {
		w = pcapgo.NewWriterNanos(&b)
	} else {
		w = pcapgo.NewWriter(&b)
	}
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)
	for i, n := range sizes {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(i + j)
		}
		ci := gopacket.CaptureInfo{Timestamp: base.Add(time.Duration(i) * time.Millisecond), CaptureLength: n, Length: n + i%3}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// bigEndian rewrites a little-endian pcap as a big-endian one.
func bigEndian(le []byte) []byte {
	be := bytes.Clone(le)
	swap := func(off int, n int) {
		for i, j := off, off+n-1; i < j; i, j = i+1, j-1 {
			be[i], be[j] = be[j], be[i]
		}
	}
	swap(0, 4)
	swap(4, 2)
	swap(6, 2)
	for _, off := range []int{8, 12, 16, 20} {
		swap(off, 4)
	}
	for off := 24; off+16 <= len(be); {
		n := int(binary.LittleEndian.Uint32(le[off+8:]))
		for _, f := range []int{0, 4, 8, 12} {
			swap(off+f, 4)
		}
		off += 16 + n
	}
	return be
}

func TestPcapReaderMatchesPcapgo(t *testing.T) {
	sizes := []int{60, 1514, 64, 9000, 0, 42, 300000 - 1}
	for _, nanos := range []bool{false, true} {
		le := samplePcap(t, nanos, sizes...)
		for name, in := range map[string][]byte{"little-endian": le, "big-endian": bigEndian(le)} {
			for _, bufSize := range []int{24, 100, 4096, 1 << 20} {
				t.Run(fmt.Sprintf("nanos=%v/%s/buf=%d", nanos, name, bufSize), func(t *testing.T) {
					compareReaders(t, in, bufSize)
				})
			}
		}
	}
	// a stream cut at every length reads what pcapgo reads, and ends the
	// same way (EOF at a record boundary, ErrUnexpectedEOF inside one)
	in := samplePcap(t, false, 60, 70, 80)
	for n := range len(in) {
		compareReaders(t, in[:n], 64)
		got, err := readOurs(in[:n], 64, nil)
		atBoundary := n == 24 || n == 24+16+60 || n == 24+2*16+60+70
		if err == nil && (got.end == "eof") != atBoundary {
			t.Errorf("cut at %d: ends with %s", n, got.end)
		}
	}
}

func TestPcapReaderGzipAndShortReads(t *testing.T) {
	in := samplePcap(t, true, 60, 1514, 64)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(in)
	zw.Close()
	want, _ := readOurs(in, 1<<20, nil)
	for name, r := range map[string]io.Reader{
		"gzip":         bytes.NewReader(z.Bytes()),
		"one-byte":     iotest.OneByteReader(bytes.NewReader(in)),
		"data-and-eof": iotest.DataErrReader(bytes.NewReader(in)),
	} {
		got, err := readOurs(nil, 64, r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.data) != 3 || got.end != "eof" || !bytes.Equal(got.data[1], want.data[1]) || got.ns[2] != want.ns[2] {
			t.Errorf("%s: read %d packets ending %s", name, len(got.data), got.end)
		}
	}
}

// On a pipe, a packet is returned as soon as its last byte has arrived,
// and Buffered says whether Next would wait.
func TestPcapReaderStreams(t *testing.T) {
	in := samplePcap(t, false, 60, 60)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(in[:24+16+60]) // header and first packet
		pw.Write(in[24+16+60 : len(in)-1])
		pw.Write(in[len(in)-1:])
		pw.Close()
	}()
	p, err := NewPcapReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if p.Buffered() {
		t.Error("Buffered before the second packet was written")
	}
	if _, data, _, err := p.Next(); err != nil || len(data) != 60 {
		t.Fatalf("second packet: %d bytes, %v", len(data), err)
	}
	if _, _, _, err := p.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestPcapReaderRejects(t *testing.T) {
	in := samplePcap(t, false, 60)
	bad := bytes.Clone(in)
	binary.LittleEndian.PutUint32(bad[24+8:], 61) // caplen > origLen
	for name, b := range map[string][]byte{
		"magic":         append([]byte{1, 2, 3, 4}, in[4:]...),
		"version":       append(append(bytes.Clone(in[:4]), 3, 0), in[6:]...),
		"caplen>wire":   bad,
		"short header":  in[:10],
		"empty":         nil,
		"huge capture":  append(bytes.Clone(in[:24]), 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f),
		"record header": in[:24+5],
	} {
		got, herr := readOurs(b, 64, nil)
		want, werr := readPcapgo(b)
		if (herr == nil) != (werr == nil) || (got.end != want.end && name != "record header") || len(got.data) != len(want.data) {
			t.Errorf("%s: ours (%v, %d packets, %s), pcapgo (%v, %d packets, %s)", name, herr, len(got.data), got.end, werr, len(want.data), want.end)
		}
	}
}

func FuzzPcapReader(f *testing.F) {
	f.Add(samplePcap(f, false, 60, 1514))
	f.Add(bigEndian(samplePcap(f, true, 42)))
	f.Add(samplePcap(f, false, 60)[:50])
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) >= 20 && (binary.LittleEndian.Uint32(in[16:]) > 1<<20 || binary.BigEndian.Uint32(in[16:]) > 1<<20) {
			return // pcapgo would allocate up to the snap length (ours stops at 16 MiB)
		}
		compareReaders(t, in, 64)
	})
}
