package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

const transcripts = "../testdata/transcripts/"

// frameSeq is a pktcap-uw console frame numbered seq (run and seq tell its
// bytes apart) at point, at clock.
func frameSeq(clock string, seq, run int, point string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s[%d] Captured at %s point, TSO not enabled, Checksum not offloaded and not verified, length 60.\n", clock, seq, point)
	b.WriteString("Segment[0] ---- 60 bytes:\n")
	f := testFrame(60, run, seq)
	for off := 0; off < 60; off += 16 {
		fmt.Fprintf(&b, "0x%04x: ", off)
		for i := off; i < min(off+16, 60); i += 2 {
			fmt.Fprintf(&b, " %02x%02x", f[i], f[i+1])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// tcpdumpXX is frame seq of run as tcpdump -nne -xx (or -XX, with the
// ASCII column) prints it.
func tcpdumpXX(clock string, seq, run int, ascii bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s 00:50:56:04:05:06 > 00:50:56:01:02:03, ethertype IPv4 (0x0800), length 60: 10.0.0.1 > 10.0.0.2: ip-proto-0 26\n", clock)
	f := testFrame(60, run, seq)
	for off := 0; off < 60; off += 16 {
		fmt.Fprintf(&b, "\t0x%04x: ", off)
		for i := off; i < min(off+16, 60); i += 2 {
			fmt.Fprintf(&b, " %02x%02x", f[i], f[i+1])
		}
		if ascii {
			b.WriteString("  .PV......E..  .")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func openText(t *testing.T, name, text string, opts Options) (*Set, error) {
	t.Helper()
	return Open([]Input{memInput(name, []byte(text), nil)}, opts)
}

func pointNames(s *Set) []string {
	var names []string
	for _, p := range s.Points() {
		names = append(names, p.Name)
	}
	return names
}

// A transcript whose banner comes after the frames (2>&1 with stdout
// flushed first, the published case in testdata): the banner names them,
// and the summary after it gives the drops.
func TestConsoleBannerAfterFrames(t *testing.T) {
	raw, err := os.ReadFile(transcripts + "pktcap-uw/pktcap-uw-console-newer-uplinkrcvkernel.txt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := openText(t, "intel.txt", string(raw), Options{})
	if err != nil {
		t.Fatal(err)
	}
	pts := s.Points()
	if len(pts) != 1 || pts[0].Name != "intel.txt#1 vmnic0/rx" || pts[0].Uplink != "vmnic0" || !pts[0].DropsKnown || pts[0].Dropped != 0 {
		t.Fatalf("points %+v; want one, intel.txt#1 vmnic0/rx, 0 dropped as the summary says", pts)
	}
	res, err := s.Correlate(context.Background(), correlate.Config{})
	if err != nil || res.Points[0].Observations != 4 {
		t.Fatalf("%v, %+v; want 4 frames", err, res.Points)
	}

	// two sessions, each printed frames first: each banner names the
	// frames before it (the summary ends a session; [1] starts the next)
	two := frameSeq("12:00:00.000001", 1, 1, "UplinkRcvKernel") + frameSeq("12:00:00.000101", 2, 1, "UplinkRcvKernel") +
		"The name of the uplink is vmnic2.\nDumped 2 packet to console, dropped 0 packets.\n" +
		frameSeq("12:00:00.000002", 1, 1, "PortOutput") + frameSeq("12:00:00.000102", 2, 1, "PortOutput") +
		"The switch port id is 0x03000009.\nDumped 2 packet to console, dropped 0 packets.\n"
	s, err = openText(t, "two.txt", two, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pointNames(s), ", "); got != "two.txt#1 vmnic2/rx, two.txt#2 50331657/PortOutput" {
		t.Errorf("points %s; want two.txt#1 vmnic2/rx, two.txt#2 50331657/PortOutput", got)
	}

	// a banner between two sessions' frames without a summary could name
	// either: it names those after it, as a banner does, and the frames
	// before it stay unnamed (an error asking for the banner), never named
	// by a guess
	amb := frameSeq("12:00:00.000001", 1, 1, "UplinkRcvKernel") + "The name of the uplink is vmnic2.\n" +
		frameSeq("12:00:01.000001", 1, 2, "UplinkRcvKernel")
	_, err = openText(t, "amb.txt", amb, Options{})
	var ne *NameError
	if !errors.As(err, &ne) || ne.Problem != AmbiguousBanner || ne.Run != 1 || !strings.Contains(err.Error(), "could name either") {
		t.Errorf("ambiguous banner: %v; want run 1 not named", err)
	}
	// so could one whose next session prints at another point
	amb2 := frameSeq("12:00:00.000001", 1, 1, "PortOutput") + "The switch port id is 0x03000009.\n" +
		frameSeq("12:00:01.000001", 1, 2, "VnicRx")
	if _, err = openText(t, "amb2.txt", amb2, Options{}); !errors.As(err, &ne) || ne.Problem != AmbiguousBanner {
		t.Errorf("ambiguous banner, other point: %v; want AmbiguousBanner", err)
	}
	// frames flushed after the summary with numbers going on are the
	// same session's
	late := frameSeq("12:00:00.000001", 1, 1, "UplinkRcvKernel") + "The name of the uplink is vmnic2.\nDumped 2 packet to console, dropped 0 packets.\n" +
		frameSeq("12:00:00.000101", 2, 1, "UplinkRcvKernel")
	if s, err := openText(t, "late.txt", late, Options{}); err != nil || len(s.Points()) != 1 {
		t.Errorf("late flush: %v %v; want one point", err, s)
	}
}

// pktcap-uw --trace output (the published 6.0 transcript): every point of
// the PATH is a sighting of the frame, at its own time; the points are
// named trace/POINT, since a path does not say which port or uplink, and
// the frame is inconclusive with a reason that names them. The
// transcript's frame has no bytes: it is a frame of its own.
func TestConsoleTrace(t *testing.T) {
	raw, err := os.ReadFile(transcripts + "pktcap-uw/pktcap-uw-trace-6.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := openText(t, "trace.txt", string(raw), Options{Day: time.Date(2016, 1, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"VnicTx", "PortInput", "IOChain", "EtherswitchDispath", "EtherswitchOutput", "PortOutput", "UplinkSndKernel", "UplinkSnd", "PktFree"}
	names := pointNames(s)
	if len(names) != len(want) {
		t.Fatalf("points %q; want trace/ of %q", names, want)
	}
	for i, w := range want {
		if names[i] != "trace.txt#1 trace/"+w {
			t.Errorf("point %d: %q; want %q", i, names[i], "trace.txt#1 trace/"+w)
		}
	}
	var insts []*correlate.Instance
	res, err := s.Correlate(context.Background(), correlate.Config{OnInstance: func(i *correlate.Instance) {
		cp := *i
		insts = append(insts, &cp)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || res.Totals[correlate.Inconclusive] != 1 {
		t.Fatalf("%d instances, totals %v; want one frame, inconclusive", len(insts), res.Totals)
	}
	// IOChain twice: two copies at one point of the path
	if res.Points[2].Observations != 2 || res.Points[0].Observations != 1 {
		t.Errorf("IOChain %d, VnicTx %d sightings; want 2 and 1", res.Points[2].Observations, res.Points[0].Observations)
	}
	reason := insts[0].Reason()
	if !strings.Contains(reason, "its bytes were not captured") || !strings.Contains(reason, "trace.txt#1 trace/VnicTx") {
		t.Errorf("reason %q; want the bytes missing and the trace points named", reason)
	}
	if len(res.Flows) != 1 || res.Flows[0].Key.String() != "frames whose bytes were not captured" {
		t.Errorf("flows %v; want one, of frames whose bytes were not captured", res.Flows)
	}
	if got := insts[0].First.Format("15:04:05.000000"); got != "12:58:49.759976" {
		t.Errorf("first sighting %s; want the path's first hop, 12:58:49.759976", got)
	}

	// the same trace with the frame's bytes: one frame seen at the
	// points of its path, which place it on no port's path
	hex := strings.SplitAfterN(frameSeq("12:58:49.760069", 1, 1, "PktFree"), "\n", 2)[1]
	withBytes := strings.Replace(string(raw), "capture length 24 of 74.\n", "capture length 60 of 60.\n"+hex, 1)
	s, err = openText(t, "trace.txt", withBytes, Options{Day: time.Date(2016, 1, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	insts = nil
	if _, err := s.Correlate(context.Background(), correlate.Config{OnInstance: func(i *correlate.Instance) { cp := *i; insts = append(insts, &cp) }}); err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].Verdict != correlate.Inconclusive || !strings.Contains(insts[0].Reason(), "seen only at trace.txt#1 trace/VnicTx") ||
		strings.Contains(insts[0].Reason(), "uplinks") {
		t.Errorf("with bytes: %d instances; want one, inconclusive, seen only at the trace points (%v)", len(insts), insts)
	}
	if len(insts) == 1 && len(insts[0].Sightings) != 10 {
		t.Errorf("with bytes: %d sightings; want the path's 10", len(insts[0].Sightings))
	}
}

// Frames tcpdump-uw printed with -xx or -XX (pktcap-uw -o - | tcpdump-uw
// -r - -nne -xx) are read from their hex, at the point pktcap-uw's banner
// names; tcpdump text without bytes (the published plain tcpdump-uw
// transcript) is an error saying what to run; -x (no link header) too.
func TestTcpdumpText(t *testing.T) {
	text := "The name of the uplink is vmnic2.\n" + "pktcap: The output file is -.\n" +
		"reading from file -, link-type EN10MB (Ethernet)\n" +
		tcpdumpXX("12:00:00.000001", 1, 1, false) + tcpdumpXX("12:00:00.000101", 2, 1, true)
	s, err := openText(t, "xx.txt", text, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pointNames(s), ", "); got != "xx.txt#1 vmnic2/rx" {
		t.Fatalf("points %s; want xx.txt#1 vmnic2/rx", got)
	}
	// the same frames at PortOutput as pktcap-uw prints them: tcpdump's
	// bytes are the frames' own, so they match
	po := "The switch port id is 0x03000009.\n" + frameSeq("12:00:00.000011", 1, 1, "PortOutput") + frameSeq("12:00:00.000111", 2, 1, "PortOutput")
	s, err = Open([]Input{memInput("xx.txt", []byte(text), nil), memInput("po.txt", []byte(po), nil)}, Options{Drops: map[string]uint64{"*": 0}})
	if err != nil {
		t.Fatal(err)
	}
	var insts int
	res, err := s.Correlate(context.Background(), correlate.Config{OnInstance: func(i *correlate.Instance) {
		if len(i.Sightings) == 2 {
			insts++
		}
	}})
	if err != nil || insts != 2 {
		t.Errorf("%v: %d frames seen at both points (%v); want 2", err, insts, res.Totals)
	}
	// no banner: name the point
	if _, err := openText(t, "nb.txt", tcpdumpXX("12:00:00.000001", 1, 1, false), Options{}); err == nil {
		t.Errorf("tcpdump text without a banner opened; want a NameError")
	}
	withPoint := Input{Name: "nb.txt", Point: "esx02/vmnic3/rx", Open: memInput("", []byte(tcpdumpXX("12:00:00.000001", 1, 1, false)), nil).Open}
	if s, err := Open([]Input{withPoint}, Options{}); err != nil || s.Points()[0].Uplink != "vmnic3" {
		t.Errorf("named: %v", err)
	}

	raw, err := os.ReadFile(transcripts + "tcpdump-uw/tcpdump-uw-plain-vmk0.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, err = openText(t, "plain.txt", string(raw), Options{})
	if !errors.Is(err, ErrNoBytes) || !strings.Contains(err.Error(), "-xx") || !strings.Contains(err.Error(), "2 of its 2 frames") {
		t.Errorf("plain tcpdump-uw: %v; want ErrNoBytes saying to run with -xx", err)
	}
	x := strings.Replace(tcpdumpXX("12:00:00.000001", 1, 1, false), "0050 5601 0203 0050 5604 0506 0800 4500", "4500 0000 0000 0000 0000 0000 c0a8 0001", 1)
	if _, err := openText(t, "x.txt", "The name of the uplink is vmnic2.\n"+x, Options{}); !errors.Is(err, ErrNoLinkHeader) {
		t.Errorf("tcpdump -x: %v; want ErrNoLinkHeader", err)
	}
}

// FuzzOpenConsole: console text of any shape (banners anywhere, --trace
// paths, tcpdump text) opens or fails with an error, never a panic, and
// what opens correlates.
func FuzzOpenConsole(f *testing.F) {
	for _, name := range []string{"pktcap-uw/pktcap-uw-console-newer-uplinkrcvkernel.txt", "pktcap-uw/pktcap-uw-trace-6.0.txt", "tcpdump-uw/tcpdump-uw-plain-vmk0.txt"} {
		raw, err := os.ReadFile(transcripts + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	f.Add("The name of the uplink is vmnic2.\n" + tcpdumpXX("12:00:00.000001", 1, 1, true) + frameSeq("12:00:00.000002", 1, 1, "UplinkRcvKernel"))
	f.Add(frameSeq("23:59:59.999999", 3, 1, "PortOutput") + "The switch port id is 0x03000009.\n" + frameSeq("00:00:00.000001", 1, 2, "PortOutput") + "Dumped 2 packet to console, dropped 0 packets.\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Open([]Input{memInput("f.txt", []byte(text), nil)}, Options{Day: t0})
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.Correlate(ctx, correlate.Config{}); err != nil {
			t.Fatal(err)
		}
	})
}

// A run at an uplink's own PortOutput (pktcap-uw --uplink vmnic2 --capture
// PortOutput: frames going out to vmnic2) is not uplink receive, nor the
// traced port's PortOutput.
func TestConsoleUplinkOtherPoint(t *testing.T) {
	text := "The name of the uplink is vmnic2.\nThe session capture point is PortOutput.\n" + frameSeq("12:00:00.000001", 1, 1, "PortOutput")
	s, err := openText(t, "up.txt", text, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Points()[0]
	if p.Name != "up.txt#1 vmnic2/PortOutput" || p.Stage != pktcap.StageOther {
		t.Errorf("point %s at stage %v; want up.txt#1 vmnic2/PortOutput, stage other", p.Name, p.Stage)
	}
}
