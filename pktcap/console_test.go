package pktcap

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/unicode"
)

const transcriptDir = "../testdata/transcripts/pktcap-uw/"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(transcriptDir + name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("# source: ")) {
		t.Fatalf("%s: first line is not a # source: provenance line", name)
	}
	return b
}

// run is one pktcap-uw invocation of a transcript: the prompt line's
// arguments and the records up to the next prompt.
type run struct {
	args []string
	recs []Record
}

const prompt = "[root@esxi:~] "

func splitRuns(t *testing.T, recs []Record) []run {
	t.Helper()
	var runs []run
	for _, r := range recs {
		if tl, ok := r.(*TextLine); ok && strings.HasPrefix(tl.Text, prompt+"pktcap-uw ") {
			runs = append(runs, run{args: strings.Fields(strings.TrimPrefix(tl.Text, prompt+"pktcap-uw "))})
			continue
		}
		if len(runs) > 0 {
			runs[len(runs)-1].recs = append(runs[len(runs)-1].recs, r)
		}
	}
	return runs
}

// onlyFrame reads a transcript of one frame: its bytes, its records and
// the frame.
func onlyFrame(t *testing.T, name string) ([]byte, []Record, *ConsoleFrame) {
	t.Helper()
	raw := readFixture(t, name)
	recs, err := ReadConsole(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	fs := frames(recs)
	if len(fs) != 1 {
		t.Fatalf("%s: got %d frames; want 1", name, len(fs))
	}
	return raw, recs, fs[0]
}

func frames(recs []Record) []*ConsoleFrame {
	var fs []*ConsoleFrame
	for _, r := range recs {
		if f, ok := r.(*ConsoleFrame); ok {
			fs = append(fs, f)
		}
	}
	return fs
}

func clock(t *testing.T, s string) time.Duration {
	t.Helper()
	d, ok := parseClock(s)
	if !ok {
		t.Fatalf("bad clock %q", s)
	}
	return d
}

func TestConsoleTranscript67(t *testing.T) {
	raw := readFixture(t, "pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt")
	recs, err := ReadConsole(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	runs := splitRuns(t, recs)
	if len(runs) != 4 {
		t.Fatalf("got %d runs; want 4", len(runs))
	}
	// Bytes shared by every frame of the article's ping (ICMP echo request
	// 192.168.100.11 -> 192.168.100.12).
	head := []byte{0x00, 0x50, 0x56, 0x9d, 0xfd, 0xb1, 0x00, 0x50, 0x56, 0x9d, 0x43, 0x42, 0x08, 0x00, 0x45, 0x00}
	tests := []struct {
		cmd   string
		point string
		vlan  int
		times []string
		ipIDs []uint16
	}{
		{"--uplink vmnic2 -c 3 --proto 0x01", "EtherswitchDispath", 100,
			[]string{"16:13:16.471308", "16:13:17.495309", "16:13:18.519323"}, []uint16{0x15e5, 0x1632, 0x170b}},
		{"--uplink vmnic3 -c 3 --proto 0x01", "EtherswitchDispath", 100,
			[]string{"16:13:26.711366", "16:13:27.735507", "16:13:28.759426"}, []uint16{0x19df, 0x1a35, 0x1b25}},
		{"--switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture PortOutput", "PortOutput", 100,
			[]string{"16:12:40.631403", "16:12:40.631419", "16:12:41.655419"}, []uint16{0x06e1, 0x06e1, 0x06f5}},
		{"--switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture VnicRx", "VnicRx", -1,
			[]string{"16:12:53.943341", "16:12:54.967365", "16:12:55.991379"}, []uint16{0x0b67, 0x0c2e, 0x0c60}},
	}
	for i, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			r := runs[i]
			if got := strings.Join(r.args, " "); got != tt.cmd {
				t.Fatalf("got command %q; want %q", got, tt.cmd)
			}
			fs := frames(r.recs)
			if len(fs) != 3 {
				t.Fatalf("got %d frames; want 3", len(fs))
			}
			for j, f := range fs {
				if f.Seq != j+1 {
					t.Errorf("frame %d: got seq %d; want %d", j, f.Seq, j+1)
				}
				if want := clock(t, tt.times[j]); f.TimeOfDay != want {
					t.Errorf("frame %d: got time %v; want %v", j, f.TimeOfDay, want)
				}
				if f.Point != tt.point {
					t.Errorf("frame %d: got point %q; want %q", j, f.Point, tt.point)
				}
				if f.VLAN != tt.vlan {
					t.Errorf("frame %d: got VLAN %d; want %d", j, f.VLAN, tt.vlan)
				}
				if f.Length != 98 || f.SegmentSize != 98 || len(f.Data) != 98 {
					t.Errorf("frame %d: got length %d, segment %d, %d bytes; want 98 each", j, f.Length, f.SegmentSize, len(f.Data))
					continue
				}
				wantFlags := []string{"TSO not enabled", "Checksum not offloaded and not verified"}
				if !slices.Equal(f.Flags, wantFlags) {
					t.Errorf("frame %d: got flags %q; want %q", j, f.Flags, wantFlags)
				}
				if !bytes.Equal(f.Data[:16], head) {
					t.Errorf("frame %d: got head % x; want % x", j, f.Data[:16], head)
				}
				if id := uint16(f.Data[18])<<8 | uint16(f.Data[19]); id != tt.ipIDs[j] {
					t.Errorf("frame %d: got IP id %#04x; want %#04x", j, id, tt.ipIDs[j])
				}
				// ICMP payload ends ... 3031 3233 3435 3637.
				if got := f.Data[90:98]; !bytes.Equal(got, []byte{0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37}) {
					t.Errorf("frame %d: got tail % x", j, got)
				}
				if f.Layout == nil || !f.Layout.HexTrailingSpace {
					t.Errorf("frame %d: trailing space of hex lines not recorded", j)
				}
			}
			var sum Summary
			var found bool
			for _, rec := range r.recs {
				if tl, ok := rec.(*TextLine); ok {
					if s, ok := ParseSummary(tl.Text); ok {
						sum, found = s, true
					}
				}
			}
			want := Summary{Dumped: 3, Dropped: 0, Dest: "console"}
			if !found || sum != want {
				t.Errorf("got summary %+v (found %v); want %+v", sum, found, want)
			}
		})
	}
	// The PortOutput run shows the frame twice, 16 µs apart, with identical
	// bytes: the copies from both uplinks before reverse teaming.
	po := frames(runs[2].recs)
	if d := po[1].TimeOfDay - po[0].TimeOfDay; d != 16*time.Microsecond {
		t.Errorf("got PortOutput duplicate gap %v; want 16µs", d)
	}
	if !bytes.Equal(po[0].Data, po[1].Data) {
		t.Error("PortOutput duplicates differ; want identical bytes")
	}
	if bytes.Equal(po[1].Data, po[2].Data) {
		t.Error("PortOutput frames 2 and 3 are identical; want different")
	}
}

func writeAll(t *testing.T, recs []Record, st Style) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewConsoleWriter(&buf, st)
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < min(len(la), len(lb)); i++ {
		if la[i] != lb[i] {
			return "line " + strconv.Itoa(i+1) + ": got " + strings.ReplaceAll(la[i], " ", "·") + " want " + strings.ReplaceAll(lb[i], " ", "·")
		}
	}
	return "lengths differ"
}

func TestConsoleWriterReproducesTranscripts(t *testing.T) {
	for _, name := range []string{
		"pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt",
		"pktcap-uw-trace-6.0.txt",
	} {
		t.Run(name, func(t *testing.T) {
			raw := readFixture(t, name)
			recs, err := ReadConsole(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := writeAll(t, recs, Style80); !bytes.Equal(got, raw) {
				t.Errorf("with parsed layout: output differs from transcript: %s", firstDiff(got, raw))
			}
		})
	}
}

// TestStyle67Reproduces6_7 drops the parsed layout and writes the frames in
// Style67: the 6.7 transcript must come out unchanged, so the preset is the
// real 6.7 layout and not just an echo of the input.
func TestStyle67Reproduces6_7(t *testing.T) {
	raw := readFixture(t, "pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt")
	recs, err := ReadConsole(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames(recs) {
		f.Layout = nil
	}
	if got := writeAll(t, recs, Style67); !bytes.Equal(got, raw) {
		t.Errorf("output differs from transcript: %s", firstDiff(got, raw))
	}
}

func TestConsoleTrace60(t *testing.T) {
	_, recs, f := onlyFrame(t, "pktcap-uw-trace-6.0.txt")
	if f.Point != "PktFree" || f.CapLength != 24 || f.Length != 74 || f.Seq != 1 || f.VLAN != -1 {
		t.Errorf("got point %q caplen %d len %d seq %d vlan %d; want PktFree 24 74 1 -1", f.Point, f.CapLength, f.Length, f.Seq, f.VLAN)
	}
	wantPath := []string{"VnicTx", "PortInput", "IOChain", "EtherswitchDispath", "EtherswitchOutput", "PortOutput", "IOChain", "UplinkSndKernel", "UplinkSnd", "PktFree"}
	var got []string
	for _, h := range f.Trace {
		got = append(got, h.Point)
	}
	if !slices.Equal(got, wantPath) {
		t.Errorf("got path %v; want %v", got, wantPath)
	}
	if want := clock(t, "12:58:49.759985"); len(f.Trace) > 3 && f.Trace[3].TimeOfDay != want {
		t.Errorf("got hop 3 time %v; want %v", f.Trace[3].TimeOfDay, want)
	}
	if len(recs) != 2 { // the # source: line and the frame
		t.Errorf("got %d records; want 2", len(recs))
	}
}

// Synthesized newer-build variants (not real output): they combine what
// third-party transcripts of 7.x/8.x-era hosts show (periods, indentation,
// "pktcap: " prefixes, a 2048-byte segment size, UplinkRcvKernel, other
// checksum flags) with CRLF line ends and blank lines.
const synthesizedNewer = "The name of the uplink is vmnic0.\r\n" +
	"To capture 2 packets.\r\n" +
	"pktcap: No server port specifed, select 57734 as the port.\r\n" +
	"Main thread: 330745392000.\r\n" +
	"\r\n" +
	"    11:59:06.483959[1] Captured at UplinkRcvKernel point, Checksum offloaded and not verified, length 62.\r\n" +
	"        Segment[0] ---- 2048 bytes:\r\n" +
	"        0x0000:  0100 5e00 0002 0000 0c07 ac3f 0800 45c0\r\n" +
	"        0x0010:  0030 0000 0000 0111 db9d 0a5b f302 e000\r\n" +
	"        0x0020:  0002 07c1 07c1 001c 75de 0000 1003 0ac8\r\n" +
	"        0x0030:  3f00 6369 7363 6f00 0000 0a5b f301\r\n" +
	"\r\n" +
	"pktcap: 11:59:06.489013[2] Captured at UplinkRcvKernel point, Checksum not offloaded and verified, VLAN tag 0, length 61\r\n" +
	"Segment[0] ---- 2048 bytes:\r\n" +
	"pktcap:   0x0000:  a4bf 0164 622b bc4a 5664 4782 0800 4500   \r\n" +
	"\t0x0010:  0034 0000 4000 3f06 fc1c 0a66 3746 0a5b\r\n" +
	"0x0020:  f3a0 0cbc b849 73cd b7be 709d 4e2e 8010\r\n" +
	"0x0030:  6000 c763 0000 0101 080a a156 73\r\n" +
	"Receive thread exiting...\r\n" +
	"pktcap: Dumped 2 packets to file -, dropped 1 packet.\r\n" +
	"Done."

func TestConsoleLenientNewer(t *testing.T) {
	recs, err := ReadConsole(strings.NewReader(synthesizedNewer))
	if err != nil {
		t.Fatal(err)
	}
	fs := frames(recs)
	if len(fs) != 2 {
		t.Fatalf("got %d frames; want 2", len(fs))
	}
	tests := []struct {
		f        *ConsoleFrame
		seq, len int
		vlan     int
		flag     string
		last     byte
	}{
		{fs[0], 1, 62, -1, "Checksum offloaded and not verified", 0x01},
		{fs[1], 2, 61, 0, "Checksum not offloaded and verified", 0x73},
	}
	for _, tt := range tests {
		f := tt.f
		if f.Seq != tt.seq || f.Length != tt.len || len(f.Data) != tt.len || f.VLAN != tt.vlan {
			t.Errorf("frame %d: got seq %d length %d data %d vlan %d; want %d %d %d %d", tt.seq, f.Seq, f.Length, len(f.Data), f.VLAN, tt.seq, tt.len, tt.len, tt.vlan)
			continue
		}
		if f.Point != "UplinkRcvKernel" || Point(f.Point).Stage() != StageUplinkRx {
			t.Errorf("frame %d: got point %q stage %v", tt.seq, f.Point, Point(f.Point).Stage())
		}
		if f.SegmentSize != 2048 {
			t.Errorf("frame %d: got segment size %d; want 2048", tt.seq, f.SegmentSize)
		}
		if !slices.Equal(f.Flags, []string{tt.flag}) {
			t.Errorf("frame %d: got flags %q; want [%q]", tt.seq, f.Flags, tt.flag)
		}
		if f.Data[len(f.Data)-1] != tt.last {
			t.Errorf("frame %d: got last byte %#x; want %#x", tt.seq, f.Data[len(f.Data)-1], tt.last)
		}
	}
	var texts []string
	for _, r := range recs {
		if tl, ok := r.(*TextLine); ok {
			texts = append(texts, tl.Message())
		}
	}
	wantTexts := []string{
		"The name of the uplink is vmnic0", "To capture 2 packets",
		"No server port specifed, select 57734 as the port", "Main thread: 330745392000", "",
		"", "Receive thread exiting...", "Dumped 2 packets to file -, dropped 1 packet", "Done",
	}
	if !slices.Equal(texts, wantTexts) {
		t.Errorf("got text lines %q; want %q", texts, wantTexts)
	}
	last := recs[len(recs)-2].(*TextLine)
	if s, ok := ParseSummary(last.Text); !ok || s != (Summary{Dumped: 2, Dropped: 1, Dest: "file -"}) {
		t.Errorf("got summary %+v, %v", s, ok)
	}
}

// A frame header is recognised with or without its final period and with
// extra spaces; malformed headers stay text.
func TestConsoleHeaderVariants(t *testing.T) {
	tests := []struct {
		line  string
		frame bool
	}{
		{"16:13:16.471308[1] Captured at EtherswitchDispath point, TSO not enabled, VLAN tag 100, length 98.", true},
		{"16:13:16.471308[1] Captured at EtherswitchDispath point, length 98", true},
		{"  pktcap: 16:13:16.471308[12] Captured at Drop point, length 60.   ", true},
		{"16:13:16.471[1] Captured at VnicRx point, length 60.", true},
		{"16:13:16.471308[1] Captured at VnicRx point, TSO not enabled.", false}, // no length
		{"16:13:16.471308[x] Captured at VnicRx point, length 60.", false},
		{"25:13:16.471308[1] Captured at VnicRx point, length 60.", false},
		{"16:13:16.471308[1] Captured at VnicRx point, VLAN tag x, length 60.", false},
		{"Captured at VnicRx point, length 60.", false},
		{"The session capture point is VnicRx", false},
	}
	for _, tt := range tests {
		_, ok := parseHeader(tt.line)
		if ok != tt.frame {
			t.Errorf("parseHeader(%q): got frame %v; want %v", tt.line, ok, tt.frame)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestConsoleReaderError(t *testing.T) {
	r := NewConsoleReader(io.MultiReader(strings.NewReader("Done.\n"), errReader{}))
	if rec, err := r.Next(); err != nil || rec.(*TextLine).Text != "Done." {
		t.Fatalf("got %v, %v; want the Done. line", rec, err)
	}
	if _, err := r.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("got %v; want the read error", err)
	}
}

func TestConsoleFrameObservation(t *testing.T) {
	f := &ConsoleFrame{TimeOfDay: clock(t, "16:13:16.471308"), Data: []byte{1, 2}, Length: 98, VLAN: 100}
	day := time.Date(2020, 5, 4, 23, 59, 0, 0, time.UTC)
	o := f.Observation(2, day)
	want := time.Date(2020, 5, 4, 16, 13, 16, 471308000, time.UTC)
	if !o.Time.Equal(want) || o.Point != 2 || o.OrigLen != 98 || o.VLAN != 100 || len(o.Data) != 2 {
		t.Errorf("got %+v; want time %v point 2 len 98 vlan 100", o, want)
	}
}

// FuzzConsoleReader: any input parses without panic, and re-parsing the
// writer's output of the parsed records gives the same frames.
func FuzzConsoleReader(f *testing.F) {
	f.Add(string(readFixture(f, "pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt")))
	f.Add(string(readFixture(f, "pktcap-uw-trace-6.0.txt")))
	f.Add(synthesizedNewer)
	f.Add("16:13:16.471308[1] Captured at X point, length 1.\nSegment[0] ---- 1 bytes:\n0x0000:  ff\n")
	f.Fuzz(func(t *testing.T, in string) {
		recs, err := ReadConsole(strings.NewReader(in))
		if err != nil {
			return // only over-long lines
		}
		var buf bytes.Buffer
		w := NewConsoleWriter(&buf, Style67)
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		again, err := ReadConsole(&buf)
		if err != nil {
			t.Fatal(err)
		}
		a, b := frames(recs), frames(again)
		if len(a) != len(b) {
			t.Fatalf("got %d frames after rewrite; want %d", len(b), len(a))
		}
		for i := range a {
			if a[i].Seq != b[i].Seq || a[i].Point != b[i].Point || a[i].Length != b[i].Length ||
				a[i].VLAN != b[i].VLAN || !bytes.Equal(a[i].Data, b[i].Data) || len(a[i].Trace) != len(b[i].Trace) {
				t.Fatalf("frame %d changed on rewrite: %+v -> %+v", i, a[i], b[i])
			}
		}
	})
}

// Transcripts saved on Windows: with a UTF-8 byte-order mark and CRLF, or
// as UTF-16LE with its mark (PowerShell's > redirection), read the same.
func TestConsoleWindowsEncodings(t *testing.T) {
	text := "The name of the uplink is vmnic2\r\n" +
		"16:13:16.471308[1] Captured at EtherswitchDispath point, TSO not enabled, VLAN tag 100, length 14.\r\n" +
		"Segment[0] ---- 14 bytes:\r\n" +
		"0x0000:  0050 569d fdb1 0050 569d 4342 0806\r\n"
	utf16le, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{"plain": text, "utf-8 bom": "\ufeff" + text, "utf-16le": utf16le} {
		fs := frames(mustReadConsole(t, in))
		if len(fs) != 1 || fs[0].Length != 14 || len(fs[0].Data) != 14 || fs[0].VLAN != 100 {
			t.Errorf("%s: %d frames %+v", name, len(fs), fs)
		}
	}
}

func mustReadConsole(t *testing.T, in string) []Record {
	t.Helper()
	recs, err := ReadConsole(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
