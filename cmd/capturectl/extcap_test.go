//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
)

// beMain makes this test binary run capturectl's main instead of the
// tests, so that Wireshark can run it from its extcap folder without a
// separate build.
const beMain = "CAPTURECTL_TEST_AS_MAIN"

func init() {
	if os.Getenv(beMain) == "1" {
		main()
		os.Exit(0)
	}
}

// Wireshark's questions, asked as Wireshark asks them.
func TestExtcapListings(t *testing.T) {
	stdout, _, err := runCmd(t, context.Background(), "--extcap-interfaces", "--extcap-version=4.0")
	if err != nil || !strings.Contains(stdout, "interface {value=capturectl}") || !strings.HasPrefix(stdout, "extcap {version=") {
		t.Errorf("--extcap-interfaces: %v\n%s", err, stdout)
	}
	// by hand, as the command extcap
	if stdout2, _, err := runCmd(t, context.Background(), "extcap", "--extcap-interfaces"); err != nil || stdout2 != stdout {
		t.Errorf("extcap --extcap-interfaces: %v\n%s", err, stdout2)
	}
	stdout, _, err = runCmd(t, context.Background(), "--extcap-interface", "capturectl", "--extcap-dlts")
	if err != nil || stdout != "dlt {number=1}{name=EN10MB}{display=Ethernet}\n" {
		t.Errorf("--extcap-dlts: %v\n%s", err, stdout)
	}
	stdout, _, err = runCmd(t, context.Background(), "--extcap-interface", "capturectl", "--extcap-config")
	if err != nil || !strings.Contains(stdout, "{call=--vm}") || !strings.Contains(stdout, "{call=--vcenter-password}{display=vCenter password}{type=password}") {
		t.Errorf("--extcap-config: %v\n%s", err, stdout)
	}
	// every option but the translated ones and extcap's own is a flag
	// of capture
	for _, a := range extcapArgs {
		if _, ok := extcapEnv[a.Call]; ok || a.Call == "--ssh-addrs" || a.Call == "--verdict-wait" {
			continue
		}
		_, stderr, err := runCmd(t, context.Background(), "capture", a.Call+"=x", "-h")
		if strings.Contains(stderr, "flag provided but not defined") {
			t.Errorf("extcap option %s is not a flag of capture: %v", a.Call, err)
		}
	}
	// filter validation: nothing for a valid filter, the reason otherwise
	stdout, _, err = runCmd(t, context.Background(), "--extcap-capture-filter", "icmp and host 10.0.0.1", "--extcap-interface", "capturectl")
	if err != nil || stdout != "" {
		t.Errorf("valid filter: %v %q", err, stdout)
	}
	stdout, _, err = runCmd(t, context.Background(), "--extcap-capture-filter", "icmp or arp", "--extcap-interface", "capturectl")
	if err != nil || !strings.Contains(stdout, "'or'") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("invalid filter: %v %q", err, stdout)
	}
	// bad requests are usage errors before anything connects
	for _, args := range [][]string{
		{"--extcap-interface", "eth0", "--extcap-dlts"},
		{"--capture", "--extcap-interface", "capturectl"},
		{"--capture", "--extcap-interface", "capturectl", "--fifo", "/nonexistent/f", "--extcap-capture-filter", "not arp", "--vm", "x"},
		{"--capture", "--extcap-interface", "capturectl", "--fifo", "/nonexistent/f", "--vm", "x", "--verdict-wait", "0s"},
		{"--capture", "--extcap-interface", "capturectl", "--fifo", "/nonexistent/f", "--vm", "x", "--verdict-wait", "soon"},
		{"--capture", "--extcap-interface", "capturectl", "--fifo", "/nonexistent/f", "--vm", "x"},
	} {
		if _, _, err := runCmd(t, context.Background(), args...); exitCode(err) != exitUsage {
			t.Errorf("%q: exit %d (%v); want %d", args, exitCode(err), err, exitUsage)
		}
	}
	// one vNIC per capture: refused before the FIFO is opened
	for _, more := range [][]string{{"--vm", "y"}, {"--portgroup", "pg"}} {
		args := append([]string{"--capture", "--extcap-interface", "capturectl", "--fifo", "/nonexistent/f", "--vm", "x"}, more...)
		if _, _, err := runCmd(t, context.Background(), args...); exitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), "one vNIC per capture") {
			t.Errorf("%q: exit %d (%v); want %d, one vNIC per capture", args, exitCode(err), err, exitUsage)
		}
	}
}

// extcapFifo runs a capture as Wireshark starts one, into a FIFO a reader
// drains, and returns its packets and capturectl's stderr.
func extcapFifo(t *testing.T, args ...string) ([]pktcap.Packet, []string, string) {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "wireshark_extcap_capturectl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			read <- nil
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		read <- b
	}()
	_, stderr, err := runCmd(t, context.Background(), append([]string{"--capture", "--extcap-interface", "capturectl", "--fifo", fifo}, args...)...)
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr)
	}
	data := <-read
	t.Logf("capturectl's stderr:\n%s", stderr)
	r, err := pktcap.NewCaptureReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%v (%d bytes)\n%s", err, len(data), stderr)
	}
	var pkts []pktcap.Packet
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	var names []string
	for _, i := range r.Interfaces() {
		names = append(names, i.Name)
	}
	return pkts, names, stderr
}

// verdictOf is the one capturectl comment of a packet ("" when it has
// none or several).
func verdictOf(p pktcap.Packet) string {
	var c []string
	for _, s := range p.Comments {
		if strings.HasPrefix(s, "capturectl: ") {
			c = append(c, s)
		}
	}
	if len(c) != 1 {
		return ""
	}
	return c[0]
}

// dupsRemoved is the article's verdict for the echo requests to testvm2.
const dupsRemoved = "capturectl: delivered, duplicates removed by reverse teaming: arrived on vmnic2 and vmnic3; the copy from vmnic3 (not the team uplink vmnic2) was dropped by reverse teaming"

// A capture as Wireshark starts one: into a FIFO, with the capture
// filter mapped onto pktcap-uw's, one pcapng interface per point, each
// frame with its verdict as a comment. With a wait longer than the
// capture every frame is held until the end, where the last frames are
// judged before they are written: every frame has its verdict.
func TestExtcapCapture(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	pkts, names, stderr := extcapFifo(t, "--extcap-capture-filter", "icmp", "--vm", "testvm2", "--duration", "2500ms",
		"--known-hosts", kh, "--verdict-wait", "30s")
	dups := 0
	for _, p := range pkts {
		d := p.Data
		if len(d) < 24 || d[12] != 0x08 || d[13] != 0x00 || d[23] != 1 {
			t.Fatalf("a frame that is not ICMP passed the filter: % x", d[:min(len(d), 24)])
		}
		v := verdictOf(p)
		switch {
		case v == "" || strings.HasPrefix(v, "capturectl: verdict not known yet"):
			t.Errorf("%s frame at %s: comments %q; want its verdict\n%s", p.InterfaceName, p.Time, p.Comments, stderr)
		case strings.HasPrefix(v, dupsRemoved):
			dups++
		}
	}
	want := []string{"esx02/vmnic2/rx", "esx02/vmnic3/rx", "esx02/50331657/PortOutput", "esx02/50331657/VnicRx"}
	if strings.Join(names, " ") != strings.Join(want, " ") || len(pkts) == 0 || dups == 0 {
		t.Errorf("interfaces %q, %d frames, %d with %q; want %q and the pings\n%s", names, len(pkts), dups, dupsRemoved, want, stderr)
	}
	if want := fmt.Sprintf("Verdict comments: %d frames with their verdict, 0 written before it was known", len(pkts)); !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// A wait shorter than the verdicts take: frames go out live, before they
// were judged, with a comment that says so — never a guessed verdict —
// and are counted; the verdicts that came later are counted too.
func TestExtcapVerdictNotYetKnown(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	pkts, _, stderr := extcapFifo(t, "--extcap-capture-filter", "icmp", "--vm", "testvm2", "--duration", "3s",
		"--known-hosts", kh, "--verdict-wait", "1ms")
	pending := report.PendingComment(time.Millisecond)
	n := 0
	for _, p := range pkts {
		switch v := verdictOf(p); {
		case v == pending:
			n++
		case v == "":
			t.Errorf("%s frame at %s: comments %q; want one capturectl comment", p.InterfaceName, p.Time, p.Comments)
		}
	}
	m := regexp.MustCompile(`Verdict comments: (\d+) frames with their verdict, (\d+) written before it was known \((\d+) after waiting 1ms, 0 with 16 MiB held, (\d+) at the end\); (\d+) verdicts came after their frame was written`).FindStringSubmatch(stderr)
	if n == 0 || m == nil || m[2] != strconv.Itoa(n) || m[3] == "0" || m[5] == "0" {
		t.Errorf("%d of %d frames written before their verdict; stderr:\n%s", n, len(pkts), stderr)
	}
}

// Wireshark closes the FIFO (a capture stopped or its window closed):
// the capture, which had no duration, stops by itself, cleans up the host
// and ends without an error, frames held or not.
func TestExtcapReaderGone(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	fifo := filepath.Join(t.TempDir(), "wireshark_extcap_capturectl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err
			return
		}
		// the section header and the first interface, then the reader
		// goes away
		_, err = io.ReadFull(f, make([]byte, 64))
		f.Close()
		got <- err
	}()
	// the bound only keeps a broken test from hanging: the capture must
	// end because the reader went away, not because of it
	ctx, cancel := context.WithTimeoutCause(context.Background(), 60*time.Second, errors.New("the capture did not notice its reader went away"))
	defer cancel()
	_, stderr, err := runCmd(t, ctx, "--capture", "--extcap-interface", "capturectl", "--fifo", fifo, "--vm", "testvm2", "--known-hosts", kh)
	if rerr := <-got; rerr != nil {
		t.Fatalf("reader: %v", rerr)
	}
	if err != nil || ctx.Err() != nil {
		t.Fatalf("capture: %v (%v)\n%s", err, context.Cause(ctx), stderr)
	}
	if !strings.Contains(stderr, "Verdict comments: ") {
		t.Errorf("no summary on stderr:\n%s", stderr)
	}
	hostClean(t, l, kh, "esx02", 10*time.Second)
}

// Linked into Wireshark's personal extcap folder, tshark lists capturectl
// and captures through it, the options given as tshark's extcap
// preferences.
func TestExtcapTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		testenv.Missing(t, "tshark not installed")
	}
	l, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	bin, err := os.Executable() // this test binary, as capturectl: see init
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	// Wireshark 4.0 reads the personal config folder's extcap; 4.1 and
	// later ~/.local/lib/wireshark/extcap
	for _, dir := range []string{".config/wireshark/extcap", ".local/lib/wireshark/extcap"} {
		d := filepath.Join(home, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(bin, filepath.Join(d, "capturectl")); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), beMain+"=1")
	cmd := exec.Command("tshark", "-D")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "capturectl (ESXi vSwitch") {
		t.Fatalf("tshark -D: %v\n%s", err, out)
	}
	// the packet comment's field: frame.comment since Wireshark 3.6,
	// pkt_comment before
	cmd = exec.Command("tshark", "-G", "fields")
	cmd.Env = env
	fields, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -G fields: %v", err)
	}
	commentField := "pkt_comment"
	if bytes.Contains(fields, []byte("\tframe.comment\t")) {
		commentField = "frame.comment"
	}
	// read reads a capture through tshark: each frame's interface,
	// protocol and comment
	read := func(pcap string) [][]string {
		t.Helper()
		cmd := exec.Command("tshark", "-r", pcap, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
			"-e", "frame.interface_name", "-e", "ip.proto", "-e", commentField)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark -r: %v\n%s", err, out)
		}
		var frames [][]string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Split(line, "\t")
			if len(f) != 3 || f[1] != "1" {
				t.Fatalf("a line that is not an ICMP frame: %q\n%s", line, out)
			}
			frames = append(frames, f)
		}
		return frames
	}
	pending := report.PendingComment(session.DefaultHoldWait)
	pcap := filepath.Join(t.TempDir(), "wireshark.pcapng")
	cmd = exec.Command("tshark", "-i", "capturectl", "-f", "icmp", "-o", "extcap.capturectl.vm:testvm2",
		"-o", "extcap.capturectl.duration:2500ms", "-o", "extcap.capturectl.knownhosts:"+kh, "-a", "duration:20", "-w", pcap)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tshark -i capturectl: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	verdicts, total := 0, 0
	for _, f := range read(pcap) {
		total++
		seen[f[0]] = true
		switch c := f[2]; {
		case strings.HasPrefix(c, dupsRemoved):
			verdicts++
		case c != pending && !strings.HasPrefix(c, "capturectl: ") || strings.Contains(c, "|"):
			t.Errorf("%s frame: comments %q; want one: capturectl's verdict or %q", f[0], c, pending)
		}
	}
	t.Logf("through tshark: %d frames, %d with the verdict %q", total, verdicts, dupsRemoved)
	if !seen["esx02/50331657/PortOutput"] || !seen["esx02/vmnic2/rx"] || verdicts == 0 {
		t.Errorf("interfaces seen through Wireshark: %v; %d frames with the verdict %q", seen, verdicts, dupsRemoved)
	}

	// Stopped from Wireshark: tshark ends the capture (SIGTERM to the
	// extcap) after 4 s; the remote captures stop and their leases go at
	// once, not when the dead-man (60 s) would, and the frames held then
	// were written with their verdicts.
	pcap = filepath.Join(t.TempDir(), "stopped.pcapng")
	cmd = exec.Command("tshark", "-i", "capturectl", "-f", "icmp", "-o", "extcap.capturectl.vm:testvm2",
		"-o", "extcap.capturectl.knownhosts:"+kh, "-a", "duration:4", "-w", pcap)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tshark -i capturectl -a duration:4: %v\n%s", err, out)
	}
	hostClean(t, l, kh, "esx02", 10*time.Second)
	verdicts = 0
	frames := read(pcap)
	for _, f := range frames {
		t.Logf("stopped by tshark: %s %q", f[0], f[2])
		if strings.HasPrefix(f[2], dupsRemoved) {
			verdicts++
		}
	}
	if verdicts == 0 {
		t.Errorf("stopped by tshark: no frame with the verdict %q", dupsRemoved)
	}
}
