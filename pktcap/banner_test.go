package pktcap

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// textLines returns the text of the TextLine records.
func textLines(recs []Record) []string {
	var s []string
	for _, r := range recs {
		if tl, ok := r.(*TextLine); ok {
			s = append(s, tl.Text)
		}
	}
	return s
}

// The banner and end lines generated for the article's four command lines
// equal the transcript's, including the trailing spaces of 6.7.
func TestBannerAndEndLinesMatch67Transcript(t *testing.T) {
	raw := readFixture(t, "pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt")
	recs, err := ReadConsole(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	runs := splitRuns(t, recs)
	sessions := []SessionInfo{
		{ServerPort: 65440, ClientPort: 1062, ID: 38},
		{ServerPort: 65444, ClientPort: 1063, ID: 39},
		{ServerPort: 65434, ClientPort: 1060, ID: 36},
		{ServerPort: 65437, ClientPort: 1061, ID: 37},
	}
	for i, r := range runs {
		o, err := ParseArgs(r.args)
		if err != nil {
			t.Fatal(err)
		}
		banner := BannerLines(o, Style67, sessions[i])
		end := EndLines(o, Style67, sessions[i], Summary{Dumped: 3})
		// In the transcript the receive thread's exit line comes before the
		// third frame; runs are separated by one blank line.
		want := slices.Concat(banner, end)
		if i < len(runs)-1 {
			want = append(want, "")
		}
		if got := textLines(r.recs); !slices.Equal(got, want) {
			t.Errorf("run %d (%s):\ngot  %q\nwant %q", i, strings.Join(r.args, " "), got, want)
		}
		// Order: banner, frames 1-2, receive exit line, frame 3, the rest.
		n := len(banner)
		_, f1 := r.recs[n].(*ConsoleFrame)
		_, f2 := r.recs[n+1].(*ConsoleFrame)
		_, f3 := r.recs[n+3].(*ConsoleFrame)
		if tl, ok := r.recs[n+2].(*TextLine); !f1 || !f2 || !f3 || !ok || tl.Text != end[0] {
			t.Errorf("run %d: records after the banner are not frame, frame, %q, frame", i, end[0])
		}
	}
}

// Style80 against the newer transcript of Intel's fixture: banner and end
// lines, and the frames written back byte for byte without their parsed
// layout.
func TestStyle80MatchesNewerTranscript(t *testing.T) {
	raw := readFixture(t, "pktcap-uw-console-newer-uplinkrcvkernel.txt")
	recs, err := ReadConsole(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	fs := frames(recs)
	wantLens := []int{62, 66, 60, 66}
	if len(fs) != len(wantLens) {
		t.Fatalf("got %d frames; want 4", len(fs))
	}
	for i, f := range fs {
		if f.Length != wantLens[i] || len(f.Data) != wantLens[i] || f.SegmentSize != 2048 || f.Point != "UplinkRcvKernel" {
			t.Errorf("frame %d: got length %d data %d segment %d point %s", i, f.Length, len(f.Data), f.SegmentSize, f.Point)
		}
		f.Layout = nil
	}
	o, err := ParseArgs([]string{"--uplink", "vmnic0", "--count", "4"})
	if err != nil {
		t.Fatal(err)
	}
	s := SessionInfo{ServerPort: 57734, ClientPort: 1039, ID: 15, Threads: [3]uint64{330745392000, 330747500288, 330749601536}, Signalled: true}
	want := slices.Concat([]string{strings.SplitN(string(raw), "\n", 2)[0]},
		BannerLines(o, Style80, s), EndLines(o, Style80, s, Summary{Dumped: 4}))
	if got := textLines(recs); !slices.Equal(got, want) {
		t.Errorf("text lines:\ngot  %q\nwant %q", got, want)
	}
	if got := writeAll(t, recs, Style80); !bytes.Equal(got, raw) {
		t.Errorf("Style80 output differs from transcript: %s", firstDiff(got, raw))
	}
}

// With -o, Style80 prefixes "pktcap: " from the output file line on, as in
// a vSAN host's transcript (Chinese vSAN notes, GitHub file index id
// 57382485878): pktcap-uw --vmk vmk1 --capture PortInput -o -
func TestBannerFileModeStyle80(t *testing.T) {
	o, err := ParseArgs(strings.Fields("--vmk vmk1 --capture PortInput -o -"))
	if err != nil {
		t.Fatal(err)
	}
	got := BannerLines(o, Style80, SessionInfo{ServerPort: 27181, ClientPort: 1026,
		Threads: [3]uint64{955338963776, 955339499264, 955340027648}})
	want := []string{
		"The name of the vmk is vmk1.",
		"The session capture point is PortInput.",
		"pktcap: The output file is -.",
		"pktcap: No server port specifed, select 27181 as the port.",
		"pktcap: Local CID 2.",
		"pktcap: Listen on port 27181.",
		"pktcap: Main thread: 955338963776.",
		"pktcap: Dump Thread: 955339499264.",
		"pktcap: Recv Thread: 955340027648.",
		"pktcap: Accept...",
		"pktcap: Vsock connection from port 1026 cid 2.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	end := EndLines(o, Style80, SessionInfo{ID: 3}, Summary{Dumped: 5, Dropped: 2})
	wantEnd := []string{
		"pktcap: Receive thread exiting...", "pktcap: Dump thread exiting...", "pktcap: Destroying session 3.",
		"pktcap: Dumped 5 packet to file -, dropped 2 packets.", "pktcap: Done.",
	}
	if !slices.Equal(end, wantEnd) {
		t.Errorf("got  %q\nwant %q", end, wantEnd)
	}
	if s, ok := ParseSummary(end[3]); !ok || s != (Summary{Dumped: 5, Dropped: 2, Dest: "file -"}) {
		t.Errorf("ParseSummary of our own line: got %+v, %v", s, ok)
	}
}

func TestBannerOtherOptions(t *testing.T) {
	o, err := ParseArgs(strings.Fields("--uplink vmnic3 -dir 0 --srcip 10.83.253.2 --stage 1 -p 5000"))
	if err != nil {
		t.Fatal(err)
	}
	got := BannerLines(o, Style67, SessionInfo{ClientPort: 1028})
	want := []string{
		"The name of the uplink is vmnic3",
		"The dir is Rx",
		"The Stage is Post",
		"The session filter source IP address is 10.83.253.2",
		"Output the packet info to console.",
		"Local CID 2",
		"Listen on port 5000",
		"Accept...Vsock connection from port 1028 cid 2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	both, err := ParseArgs(strings.Fields("--switchport 67108910 --dir 2 -o -"))
	if err != nil {
		t.Fatal(err)
	}
	if got := BannerLines(both, Style80, SessionInfo{ServerPort: 7799})[:2]; !slices.Equal(got, []string{"The switch port id is 0x0400002e.", "pktcap: The output file is -."}) {
		t.Errorf("--dir 2: got %q", got)
	}
}

func TestParseSummary(t *testing.T) {
	tests := []struct {
		line string
		want Summary
		ok   bool
	}{
		{"Dumped 3 packet to console, dropped 0 packets.", Summary{3, 0, "console"}, true},
		{"Dumped 1 packets to console, dropped 1 packet", Summary{1, 1, "console"}, true},
		{"pktcap: Dumped 48 packet to file -, dropped 0 packets.", Summary{48, 0, "file -"}, true},
		{"   pktcap:Dumped 2 packet to file /vmfs/volumes/ds1/a, b.pcap, dropped 7 packets.  \r", Summary{2, 7, "file /vmfs/volumes/ds1/a, b.pcap"}, true},
		{"Dumped x packet to console, dropped 0 packets.", Summary{}, false},
		{"Dumped 3 packet to console.", Summary{}, false},
		{"Dumped 3 packet to , dropped 0 packets.", Summary{}, false},
		{"Dumped 3 packet to console, dropped 0 packets. extra", Summary{}, false},
		{"Done.", Summary{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseSummary(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseSummary(%q): got %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
	if got := SummaryLine(&Options{}, Style67, Summary{Dumped: 3}); got != "Dumped 3 packet to console, dropped 0 packets." {
		t.Errorf("SummaryLine: got %q", got)
	}
}

func FuzzParseSummary(f *testing.F) {
	f.Add("Dumped 3 packet to console, dropped 0 packets.")
	f.Add("pktcap: Dumped 48 packets to file -, dropped 1 packet")
	f.Fuzz(func(t *testing.T, line string) {
		s, ok := ParseSummary(line)
		if !ok {
			return
		}
		again, ok := ParseSummary(s.text())
		if !ok || again != s {
			t.Fatalf("re-parse of %q: got %+v, %v; want %+v", s.text(), again, ok, s)
		}
	})
}
