package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/pktcap"
)

// writePcap writes frames at times to a pcap file of dir.
func writePcap(t *testing.T, dir, name string, frames [][]byte, at []time.Time) string {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pktcap.NewPcapWriter(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		if err := w.WritePacket(at[i], fr, len(fr)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// filteredPcaps writes the per-point pcaps of 2n frames while the port's
// team uplink is vmnic2: n came in on vmnic3 only and reached PortOutput,
// never VnicRx (filtered by reverse teaming); n came in on vmnic2 and were
// delivered.
func filteredPcaps(t *testing.T, dir string, n int) (files, points []string) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var in, other, po [][]byte
	var atIn, atOther, atPO, atRx []time.Time
	for i := range n {
		a, b := testFrame(60, 1, i), testFrame(60, 2, i)
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		in, other, po = append(in, a), append(other, b), append(po, a, b)
		atIn, atOther = append(atIn, at), append(atOther, at.Add(3*time.Millisecond))
		atPO = append(atPO, at.Add(20*time.Microsecond), at.Add(3*time.Millisecond+10*time.Microsecond))
		atRx = append(atRx, at.Add(3*time.Millisecond+20*time.Microsecond))
	}
	files = []string{
		writePcap(t, dir, "up2.pcap", other, atOther),
		writePcap(t, dir, "up3.pcap", in, atIn),
		writePcap(t, dir, "po.pcap", po, atPO),
		writePcap(t, dir, "rx.pcap", other, atRx),
	}
	points = []string{"esx02/vmnic2/rx", "esx02/vmnic3/rx", "esx02/7/PortOutput", "esx02/7/VnicRx"}
	return files, points
}

// mergecap merges per-point pcaps into one interface by default: analyze
// then refuses to take --point FILE#N for the interfaces that are not
// there, exit 2, saying what mergecap did and that -I none keeps one
// interface per file; the file merged with -I none is judged as the
// per-point files are.
func TestAnalyzeMergecapOneInterface(t *testing.T) {
	if _, err := exec.LookPath("mergecap"); err != nil {
		testenv.Missing(t, "mergecap not installed: %v", err)
	}
	dir := t.TempDir()
	files, points := filteredPcaps(t, dir, 50)
	merge := func(name string, flags ...string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command("mergecap", append(append(flags, "-w", out), files...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mergecap %v: %v\n%s", flags, err, b)
		}
		return out
	}
	args := func(file string) []string {
		a := []string{"analyze", "--json", "--team-uplink", "vmnic2", "--dropped", "*=0"}
		for i, p := range points {
			a = append(a, "--point", file+"#"+string(rune('0'+i))+"="+p)
		}
		return append(a, file)
	}
	one := merge("merged.pcapng")
	_, _, err := runCmd(t, context.Background(), args(one)...)
	if code := exitCode(err); code != exitUsage {
		t.Fatalf("one interface: exit %d (%v); want %d", code, err, exitUsage)
	}
	for _, want := range []string{"--point names 4 interfaces", "has 1 interface;", "mergecap (Mergecap", "merged the files into one interface", "mergecap -I none", "one interface per file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("one interface: %v\nlacks %q", err, want)
		}
	}
	// named as one point, the file's one interface says the same
	_, _, err = runCmd(t, context.Background(), "analyze", one)
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "mergecap -I none") {
		t.Errorf("one interface, unnamed: exit %d, %v; want exit 2 naming mergecap -I none", code, err)
	}

	apart := merge("apart.pcapng", "-I", "none")
	stdout, stderr, err := runCmd(t, context.Background(), args(apart)...)
	if !errors.Is(err, errFiltered) || !strings.Contains(stdout, `"filtered_reverse_teaming": 50`) {
		t.Errorf("-I none: %v; want 50 filtered by reverse teaming\n%s\n%s", err, stdout, stderr)
	}
}

// analyzePipe runs analyze with args, its standard input a pipe that
// data is written into (as `cat FILE | capturectl analyze -` does), with
// TMPDIR a directory of the test's, which must be empty afterwards: the
// spooled copy is removed.
func analyzePipe(t *testing.T, data []byte, args ...string) (string, string, error) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		w.Close()
		done <- err
	}()
	var out, errb syncBuf
	err = run(context.Background(), append([]string{"analyze"}, args...), r, &out, &errb)
	r.Close()
	if werr := <-done; werr != nil && err == nil {
		t.Errorf("writing to the pipe: %v", werr)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
	return out.String(), errb.String(), err
}

// analyze - reads standard input: a pasted transcript through a pipe, a
// pcapng (read more than once, so spooled), a pcap named with --point -=NAME,
// a transcript whose banner comes after its frames; plain tcpdump-uw text
// and - twice are usage errors saying what to do.
func TestAnalyzeStdin(t *testing.T) {
	article, err := os.ReadFile("../../testdata/transcripts/pktcap-uw/pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt")
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := analyzePipe(t, article, "--date", "2020-05-04", "--team-uplink", "vmnic2", "-")
	if err != nil || !strings.Contains(stdout, "stdin#3 50331657/PortOutput") || !strings.Contains(stdout, "11 inconclusive") {
		t.Errorf("pasted transcript: %v\n%s\n%s", err, stdout, stderr)
	}

	dir := t.TempDir()
	files, points := filteredPcaps(t, dir, 20)
	po, _ := os.ReadFile(files[2])
	stdout, _, err = analyzePipe(t, po, "--json", "--point", "-=esx02/7/PortOutput", "-")
	if err != nil || !strings.Contains(stdout, `"name": "esx02/7/PortOutput"`) {
		t.Errorf("pcap on stdin: %v\n%s", err, stdout)
	}

	late, _ := os.ReadFile("../../testdata/transcripts/pktcap-uw/pktcap-uw-console-newer-uplinkrcvkernel.txt")
	stdout, stderr, err = analyzePipe(t, late, "--json", "-")
	if err != nil || !strings.Contains(stdout, `"name": "stdin#1 vmnic0/rx"`) {
		t.Errorf("banner after the frames: %v\n%s\n%s", err, stdout, stderr)
	}

	// two such sessions pasted one after the other: each banner names the
	// frames before it, the summary telling the sessions apart; without
	// the first summary the first banner could name either
	twice := append(append([]byte(nil), late...), late...)
	stdout, stderr, err = analyzePipe(t, twice, "--json", "-")
	if err != nil || !strings.Contains(stdout, `"name": "stdin#2 vmnic0/rx"`) {
		t.Errorf("two sessions, banners after frames: %v\n%s\n%s", err, stdout, stderr)
	}
	noSummary := append(bytes.Replace(late, []byte("Dumped 4 packet to console, dropped 0 packets.\n"), nil, 1), late...)
	_, _, err = analyzePipe(t, noSummary, "-")
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "-, run 1: ") || !strings.Contains(err.Error(), "could name either") {
		t.Errorf("a banner between two sessions: exit %d, %v; want exit 2 saying it could name either", exitCode(err), err)
	}

	plain, _ := os.ReadFile("../../testdata/transcripts/tcpdump-uw/tcpdump-uw-plain-vmk0.txt")
	_, _, err = analyzePipe(t, plain, "-")
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "standard input: tcpdump text without the frames' bytes") || !strings.Contains(err.Error(), "-xx") {
		t.Errorf("plain tcpdump-uw: exit %d, %v; want exit 2 saying to run tcpdump-uw -xx", exitCode(err), err)
	}
	if _, _, err := runCmd(t, context.Background(), "analyze", "-", "-"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("- twice: exit %d, %v; want exit 2", exitCode(err), err)
	}
	// the four points in one pcapng whose interfaces are named after them,
	// as capturectl capture writes it (one point after the other here)
	var ifaces []pktcap.NgInterface
	for _, p := range points {
		ifaces = append(ifaces, pktcap.NgInterface{Name: p})
	}
	var ngb bytes.Buffer
	nw, err := pktcap.NewNgWriter(&ngb, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		raw, _ := os.ReadFile(f)
		pr, err := pktcap.NewPcapReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		for {
			at, frame, n, err := pr.NextPacket()
			if err != nil {
				break
			}
			nw.WritePacket(i, at, frame, n)
		}
	}
	nw.Close()
	data := ngb.Bytes()
	args := []string{"--json", "--team-uplink", "vmnic2", "--dropped", "*=0"}
	stdout, stderr, err = analyzePipe(t, data, append(args, "-")...)
	if !errors.Is(err, errFiltered) || !strings.Contains(stdout, `"filtered_reverse_teaming": 20`) || !strings.Contains(stdout, `"delivered": 20`) {
		t.Errorf("pcapng on stdin: %v; want 20 filtered, 20 delivered\n%s\n%s", err, stdout, stderr)
	}
}

// --point FILE#N for an interface a pcapng of several lacks says which it
// has; one that capturectl wrote with one interface gets the mergecap
// advice, since that is how such a file usually comes to lack them.
func TestAnalyzeNoSuchInterface(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		var ifaces []pktcap.NgInterface
		for i := range n {
			ifaces = append(ifaces, pktcap.NgInterface{Name: "if" + string(rune('0'+i))})
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w, err := pktcap.NewNgWriter(f, ifaces)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		return f.Name()
	}
	four, one := write("four.pcapng", 4), write("one.pcapng", 1)
	_, _, err := runCmd(t, context.Background(), "analyze", "--point", four+"#99=esx02/vmnic2/rx", four)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "has 4 interfaces (#0 to #3)") || strings.Contains(err.Error(), "mergecap") {
		t.Errorf("#99 of 4: exit %d, %v", exitCode(err), err)
	}
	_, _, err = runCmd(t, context.Background(), "analyze", "--point", one+"#0=esx02/vmnic2/rx", "--point", one+"#1=esx02/vmnic3/rx", one)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "has 1 interface; if mergecap made it") || !strings.Contains(err.Error(), "mergecap -I none") {
		t.Errorf("#1 of 1: exit %d, %v", exitCode(err), err)
	}
}
