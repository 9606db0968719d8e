package main

import (
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
