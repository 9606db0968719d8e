package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/capturectl/capturectl/internal/testenv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

const article = "../testdata/transcripts/pktcap-uw/pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt"

// pcapFile writes a pcap of frames (seq numbers) at t0 + seq s + off.
func pcapFile(t *testing.T, name string, snaplen int, seqs []int, off time.Duration, size int) string {
	var b bytes.Buffer
	w, err := pktcap.NewPcapWriter(&b, snaplen)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range seqs {
		f := testFrame(size, 0, i)
		w.WritePacket(t0.Add(time.Duration(i)*time.Second+off), f, len(f))
	}
	w.Flush()
	return writeFile(t, name, b.Bytes())
}

// What Open says of each point: where its live interval and drop count
// come from, and its snap length.
func TestPointInfo(t *testing.T) {
	pcap := pcapFile(t, "a.pcap", 64, []int{0, 1, 2}, 0, 100)
	stopped := ngLayout{names: []string{"esx01/7/VnicRx"}, step: []time.Duration{time.Millisecond}, chunks: []chunk{{0, 0, 10}}, stats: true}
	killed := stopped
	killed.stats = false
	summary := "The name of the uplink is vmnic2\n" + consoleFrame("12:00:00.000001", 60) + "Dumped 1 packet to console, dropped 2 packets.\n"
	for _, tc := range []struct {
		name       string
		in         Input
		fromFrames bool
		drops      bool
		dropped    uint64
		snap       int
		start      time.Time
	}{
		{"pcap", Input{Name: pcap, Point: "esx01/vmnic2/rx"}, true, false, 0, 64, time.Time{}},
		{"pcapng with statistics", memInput("s.pcapng", stopped.build(t), nil), false, true, 0, 0, t0.Add(-time.Second)},
		{"pcapng of a killed trace", memInput("k.pcapng", killed.build(t), nil), true, false, 0, 0, t0.Add(-defaultWindow)},
		{"console with summary", memInput("c.txt", []byte(summary), nil), true, true, 2, 0, t0.Add(time.Microsecond - defaultWindow)},
		{"console cut before the summary", memInput("c.txt", []byte(summary[:strings.Index(summary, "Dumped")]), nil), true, false, 0, 0, t0.Add(time.Microsecond - defaultWindow)},
	} {
		s, err := Open([]Input{tc.in}, Options{Day: t0.Truncate(24 * time.Hour)})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		p := s.Points()[0]
		if p.LiveFromFrames != tc.fromFrames || p.DropsKnown != tc.drops || p.Dropped != tc.dropped || p.SnapLen != tc.snap || !p.Start.Equal(tc.start) {
			t.Errorf("%s: live from frames %v, drops known %v, dropped %d, snap length %d, start %v; want %v %v %d %d %v", tc.name,
				p.LiveFromFrames, p.DropsKnown, p.Dropped, p.SnapLen, p.Start, tc.fromFrames, tc.drops, tc.dropped, tc.snap, tc.start)
		}
	}
}

// consoleFrame is console text of a frame of n bytes at time of day
// clock, captured at UplinkRcvKernel.
func consoleFrame(clock string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s[1] Captured at UplinkRcvKernel point, TSO not enabled, Checksum not offloaded and not verified, length %d.\n", clock, n)
	fmt.Fprintf(&b, "Segment[0] ---- %d bytes:\n", n)
	f := testFrame(n, 0, 1)
	for off := 0; off < n; off += 16 {
		fmt.Fprintf(&b, "0x%04x: ", off)
		for i := off; i < min(off+16, n); i += 2 {
			fmt.Fprintf(&b, " %02x%02x", f[i], f[i+1])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Points captured with different snap lengths (-s 64 at PortOutput, whole
// frames at VnicRx) still correlate: frames are keyed over the shortest.
func TestMixedSnapLengths(t *testing.T) {
	write := func(name string, snaplen, copies int) string {
		var b bytes.Buffer
		w, _ := pktcap.NewPcapWriter(&b, snaplen)
		for i := range 5 {
			frame := testFrame(200, 0, i)
			frame[150] = 0xee // past the 64-byte snap length
			for c := range copies {
				w.WritePacket(t0.Add(time.Duration(i)*time.Second+time.Duration(c)*20*time.Microsecond), frame, len(frame))
			}
		}
		w.Flush()
		return writeFile(t, name, b.Bytes())
	}
	po, rx := write("po.pcap", 64, 2), write("rx.pcap", 0, 1)
	s, res := correlateSet(t, []Input{{Name: po, Point: "esx01/7/PortOutput"}, {Name: rx, Point: "esx01/7/VnicRx"}}, correlate.Config{})
	if k := s.Config(correlate.Config{}).KeyLen; k != 64 {
		t.Errorf("key length %d; want 64", k)
	}
	if k := s.Config(correlate.Config{KeyLen: 32}).KeyLen; k != 32 {
		t.Errorf("key length %d; want the config's 32, which is shorter", k)
	}
	if res.Totals[correlate.DeliveredDupsRemoved] != 5 {
		t.Errorf("totals %v; want 5 delivered, duplicates removed", res.Totals)
	}
	// a pcap's live interval is its frames, known once read
	st := res.Points[0]
	if !st.Start.Equal(t0.Add(-defaultWindow)) || !st.Stop.Equal(t0.Add(4*time.Second+20*time.Microsecond+defaultWindow)) {
		t.Errorf("PortOutput live %v to %v; want its first and last frame widened by the window", st.Start, st.Stop)
	}
}

// A pcap cut short (a killed run) is read up to the cut; a corrupt record
// is an error that names the file; gzip-compressed files read as the
// plain ones.
func TestPcapCutCorruptCompressed(t *testing.T) {
	testenv.CheckGoroutines(t)
	full, _ := os.ReadFile(pcapFile(t, "full.pcap", 0, []int{0, 1, 2}, 0, 60))
	cut := writeFile(t, "cut.pcap", full[:len(full)-10])
	_, res := correlateSet(t, []Input{{Name: cut, Point: "esx01/7/VnicRx"}}, correlate.Config{})
	if n := res.Points[0].Observations; n != 2 {
		t.Errorf("cut: %d frames; want the 2 whole ones", n)
	}
	bad := bytes.Clone(full)
	binary.LittleEndian.PutUint32(bad[24+16+60+8:], 61) // the second record: 61 bytes of a 60-byte frame
	corrupt := writeFile(t, "corrupt.pcap", bad)
	s, err := Open([]Input{{Name: corrupt, Point: "esx01/7/VnicRx"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Correlate(context.Background(), correlate.Config{})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Input != corrupt || err.Error() != "ingest: "+corrupt+": capture length exceeds original packet length: 61 > 60" {
		t.Errorf("corrupt: %v; want an *InputError naming the file", err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(full)
	zw.Close()
	gz := writeFile(t, "full.pcap.gz", z.Bytes())
	_, res = correlateSet(t, []Input{{Name: gz, Point: "esx01/7/VnicRx"}}, correlate.Config{})
	if n := res.Points[0].Observations; n != 3 {
		t.Errorf("gzip: %d frames; want 3", n)
	}
}

func TestInputErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pcap")
	_, err := Open([]Input{{Name: missing, Point: "esx01/7/VnicRx"}}, Options{})
	var ie *InputError
	if !errors.As(err, &ie) || !errors.Is(err, fs.ErrNotExist) || err.Error() != "ingest: open "+missing+": no such file or directory" {
		t.Errorf("missing: %v", err)
	}
	_, err = Open([]Input{memInput("junk.txt", []byte("hello\n"), nil)}, Options{})
	if !errors.Is(err, ErrNotCapture) || !errors.As(err, &ie) || ie.Input != "junk.txt" {
		t.Errorf("junk: %v; want ErrNotCapture of junk.txt", err)
	}
	_, err = Open([]Input{memInput("bad.gz", []byte{0x1f, 0x8b, 1, 2}, nil)}, Options{})
	if !errors.As(err, &ie) || ie.Input != "bad.gz" {
		t.Errorf("bad gzip: %v", err)
	}
	if _, err := Open(nil, Options{}); err == nil {
		t.Errorf("no inputs: no error")
	}
}

// The naming of points: what is missing or wrong, and where.
func TestNameErrors(t *testing.T) {
	pcap := pcapFile(t, "a.pcap", 0, []int{0}, 0, 60)
	one := ngLayout{names: []string{"vmnic2"}, step: []time.Duration{time.Millisecond}, chunks: []chunk{{0, 0, 2}}}.build(t)
	two := ngLayout{names: []string{"po.pcap", "rx.pcap"}, step: []time.Duration{time.Millisecond, time.Millisecond}, chunks: []chunk{{0, 0, 2}, {1, 0, 2}}}.build(t)
	noBanner := consoleFrame("12:00:00.000001", 60)
	twoRuns, _ := os.ReadFile(article)
	for _, tc := range []struct {
		name string
		in   Input
		want NameError
	}{
		{"pcap unnamed", Input{Name: pcap}, NameError{Problem: Unnamed, Iface: -1}},
		{"pcap badly named", Input{Name: pcap, Point: "esx01/bogus"}, NameError{Problem: BadName, Iface: -1, Name: "esx01/bogus"}},
		{"pcap with interfaces", Input{Name: pcap, Point: "esx01/7/VnicRx", Interfaces: map[int]string{0: "x"}}, NameError{Problem: NoSuchInterface, Iface: 0, Name: "x"}},
		{"pcapng interface not a point", memInput("one.pcapng", one, nil), NameError{Problem: NotAPoint, Iface: 0, Count: 1, Name: "vmnic2", Application: "capturectl"}},
		{"pcapng named badly", withPoint(memInput("one.pcapng", one, nil), "esx01/bogus"), NameError{Problem: BadName, Iface: 0, Count: 1, Name: "esx01/bogus"}},
		{"pcapng interface 1 not a point", withIfaces(memInput("two.pcapng", two, nil), map[int]string{0: "esx01/7/PortOutput"}), NameError{Problem: NotAPoint, Iface: 1, Count: 2, Name: "rx.pcap", Application: "capturectl"}},
		{"pcapng interface named badly", withIfaces(memInput("two.pcapng", two, nil), map[int]string{0: "esx01/7/PortOutput", 1: "bogus"}), NameError{Problem: BadName, Iface: 1, Count: 2, Name: "bogus"}},
		{"pcapng of two, one name", withPoint(memInput("two.pcapng", two, nil), "esx01/7/VnicRx"), NameError{Problem: TooManyInterfaces, Iface: -1, Count: 2, Name: "esx01/7/VnicRx", Application: "capturectl"}},
		{"pcapng no interface 5", withIfaces(memInput("two.pcapng", two, nil), map[int]string{5: "esx01/7/VnicRx"}), NameError{Problem: NoSuchInterface, Iface: 5, Count: 2, Name: "esx01/7/VnicRx", Named: 1, Application: "capturectl"}},
		{"console without banner", memInput("f.txt", []byte(noBanner), nil), NameError{Problem: NotAPoint, Iface: -1, Run: 1, Count: 1, Name: "UplinkRcvKernel"}},
		{"console named badly", withPoint(memInput("f.txt", []byte(noBanner), nil), "bogus"), NameError{Problem: BadName, Iface: -1, Name: "bogus"}},
		{"console of four sessions, one name", withPoint(memInput("article.txt", twoRuns, nil), "esx01/vmnic2/rx"), NameError{Problem: TooManySessions, Iface: -1, Count: 4, Name: "esx01/vmnic2/rx"}},
	} {
		_, err := Open([]Input{tc.in}, Options{})
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("%s: %v; want a *NameError", tc.name, err)
			continue
		}
		tc.want.Input, tc.want.Err = tc.in.Name, ne.Err
		if *ne != tc.want || (ne.Problem == NotAPoint || ne.Problem == BadName) != (ne.Err != nil) {
			t.Errorf("%s: %+v; want %+v", tc.name, *ne, tc.want)
		}
		if !strings.HasPrefix(err.Error(), "ingest: "+tc.in.Name+": ") {
			t.Errorf("%s: %q does not name the input", tc.name, err)
		}
	}
	// named well, they open
	for _, in := range []Input{
		withPoint(memInput("one.pcapng", one, nil), "esx01/vmnic2/rx"),
		withIfaces(memInput("one.pcapng", one, nil), map[int]string{0: "esx01/vmnic2/rx"}),
		withIfaces(memInput("two.pcapng", two, nil), map[int]string{0: "esx01/7/PortOutput", 1: "esx01/7/VnicRx"}),
		withPoint(memInput("f.txt", []byte(noBanner), nil), "esx02/vmnic2/rx"),
	} {
		if s, err := Open([]Input{in}, Options{}); err != nil {
			t.Errorf("%s %q %v: %v", in.Name, in.Point, in.Interfaces, err)
		} else if p := s.Points()[0]; p.Stage == 0 && p.Name == "" {
			t.Errorf("%s: point %+v", in.Name, p)
		}
	}
}

func withPoint(in Input, p string) Input { in.Point = p; return in }

func withIfaces(in Input, m map[int]string) Input { in.Interfaces = m; return in }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Console text: a banner starts a session, a 7.0+ session at several
// points gives a point per point, the summary line its drops, and a run
// that crosses midnight goes on to the next day.
func TestConsoleRuns(t *testing.T) {
	text := "The name of the uplink is vmnic3\n" + consoleFrame("23:59:59.999000", 60) + consoleFrame("00:00:00.001000", 60) +
		"Dumped 2 packet to console, dropped 0 packets.\n" +
		"The switch port id is 0x03000009\nThe session capture point is PortOutput,VnicRx\n" +
		strings.Replace(consoleFrame("00:00:01.000000", 60), "UplinkRcvKernel", "PortOutput", 1) +
		strings.Replace(consoleFrame("00:00:01.000010", 60), "UplinkRcvKernel", "VnicRx", 1)
	s, err := Open([]Input{memInput("t.txt", []byte(text), nil)}, Options{Day: t0.Truncate(24 * time.Hour)})
	must(t, err)
	var names []string
	for _, p := range s.Points() {
		names = append(names, p.Name)
	}
	want := []string{"t.txt#1 vmnic3/rx", "t.txt#2 50331657/PortOutput", "t.txt#2 50331657/VnicRx"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("points %q; want %q", names, want)
	}
	day := t0.Truncate(24 * time.Hour)
	up := s.Points()[0]
	if !up.DropsKnown || !up.Stop.Equal(day.Add(24*time.Hour+time.Millisecond+defaultWindow)) {
		t.Errorf("vmnic3: drops known %v, stop %v; want the summary's drops and the next day", up.DropsKnown, up.Stop)
	}
	if po := s.Points()[1]; po.DropsKnown || po.Stage != pktcap.StagePortOutput {
		t.Errorf("PortOutput: %+v; want no drop count (no summary)", po)
	}
	res, err := s.Correlate(context.Background(), correlate.Config{})
	must(t, err)
	if got := res.Points[0].Observations + res.Points[1].Observations + res.Points[2].Observations; got != 4 {
		t.Errorf("%d frames; want 4", got)
	}
}

func TestJoinSpans(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	start, stop, gaps := joinSpans([]correlate.Gap{{From: at(5), To: at(6)}, {From: at(0), To: at(2)}, {From: at(1), To: at(3)}})
	if !start.Equal(at(0)) || !stop.Equal(at(6)) || len(gaps) != 1 || !gaps[0].From.Equal(at(3)) || !gaps[0].To.Equal(at(5)) {
		t.Errorf("%v to %v, gaps %v; want 0h to 6h with a gap from 3h to 5h", start, stop, gaps)
	}
}

// Cancelling stops the readers of every kind of input, and Correlate
// returns the context's error.
func TestCorrelateCancelled(t *testing.T) {
	testenv.CheckGoroutines(t)
	l := ngLayout{names: []string{"esx01/7/PortOutput", "esx01/7/VnicRx"}, step: []time.Duration{10 * time.Microsecond, 10 * time.Microsecond},
		chunks: []chunk{{0, 0, 30000}, {1, 0, 30000}}}
	pcap := pcapFile(t, "a.pcap", 0, []int{0, 1, 2, 3}, 0, 60)
	s, err := Open([]Input{memInput("c.pcapng", l.build(t), nil), {Name: pcap, Point: "esx01/vmnic2/rx"}, memInput("article.txt", mustRead(t, article), nil)},
		Options{Day: time.Date(2020, 5, 4, 0, 0, 0, 0, time.UTC)})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err = s.Correlate(ctx, correlate.Config{OnInstance: func(*correlate.Instance) {
		if n++; n == 100 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v; want context.Canceled", err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	data, err := os.ReadFile(name)
	must(t, err)
	return data
}

// Drops a capture did not record are unknown, not zero: a pcapng of a
// killed capture (no interface statistics) makes the verdicts that rest on
// a point not seeing a frame inconclusive. Options.Drops gives the counts
// pktcap-uw printed; they must name points the inputs have and agree with
// what the files recorded.
func TestUnknownDrops(t *testing.T) {
	names := []string{"esx01/vmnic2/rx", "esx01/7/PortOutput", "esx01/7/VnicRx"}
	l := ngLayout{names: names, step: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}}
	// frames 0-99 at the uplink and PortOutput, 0-49 and 99 at VnicRx
	// (live throughout): 49 not delivered, which is "dropped after
	// PortOutput" only if VnicRx missed nothing; the 51 delivered stand
	l.chunks = []chunk{{0, 0, 100}, {1, 0, 100}, {2, 0, 50}, {2, 99, 100}}
	cfg := correlate.Config{Port: correlate.Port{TeamUplink: "vmnic2", Policy: "srcport"}}
	killed := l.build(t)
	for _, c := range []struct {
		name  string
		drops map[string]uint64
		want  func(r *correlate.Result) bool
	}{
		{"unknown", nil, func(r *correlate.Result) bool {
			return r.Totals[correlate.Delivered] == 51 && r.Totals[correlate.Inconclusive] == 49 && r.Points[2].DropsUnknown
		}},
		{"given as none", noDrops(names...), func(r *correlate.Result) bool {
			return r.Totals[correlate.Delivered] == 51 && r.Totals[correlate.DroppedAfterPortOutput] == 49 && !r.Points[2].DropsUnknown
		}},
		{"* for the rest", map[string]uint64{"*": 0, "esx01/7/VnicRx": 9}, func(r *correlate.Result) bool {
			return r.Totals[correlate.Inconclusive] == 49 && r.Points[2].Dropped == 9 && r.Points[0].Dropped == 0 && !r.Points[0].DropsUnknown
		}},
	} {
		s, err := Open([]Input{memInput("killed.pcapng", killed, nil)}, Options{Drops: c.drops})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Correlate(context.Background(), cfg)
		if err != nil || !c.want(r) {
			t.Errorf("%s: %v totals %v points %+v", c.name, err, r.Totals, r.Points)
		}
	}
	l.stats = true
	stopped := l.build(t) // statistics: 0 dropped everywhere
	for _, c := range []struct {
		drops map[string]uint64
		err   string
	}{
		{map[string]uint64{"esx01/9/VnicRx": 0}, "a drop count given for esx01/9/VnicRx, which no input has (points: esx01/vmnic2/rx, esx01/7/PortOutput, esx01/7/VnicRx)"},
		{map[string]uint64{"esx01/7/VnicRx": 4}, "a drop count given for esx01/7/VnicRx: 4, but the capture recorded 0"},
	} {
		_, err := Open([]Input{memInput("stopped.pcapng", stopped, nil)}, Options{Drops: c.drops})
		if !errors.Is(err, ErrDrops) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: %v; want %q", c.drops, err, c.err)
		}
	}
	if _, err := Open([]Input{memInput("stopped.pcapng", stopped, nil)}, Options{Drops: map[string]uint64{"esx01/7/VnicRx": 0, "*": 3}}); err != nil {
		t.Errorf("agreeing count and * with nothing left: %v", err)
	}
}
