//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/pktcap"
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
	stdout, _, err = runCmd(t, context.Background(), "--extcap-interface", "capturectl", "--extcap-dlts")
	if err != nil || stdout != "dlt {number=1}{name=EN10MB}{display=Ethernet}\n" {
		t.Errorf("--extcap-dlts: %v\n%s", err, stdout)
	}
	stdout, _, err = runCmd(t, context.Background(), "--extcap-interface", "capturectl", "--extcap-config")
	if err != nil || !strings.Contains(stdout, "{call=--vm}") || !strings.Contains(stdout, "{call=--vcenter-password}{display=vCenter password}{type=password}") {
		t.Errorf("--extcap-config: %v\n%s", err, stdout)
	}
	// every option but the translated ones is a flag of capture
	for _, a := range extcapArgs {
		if _, ok := extcapEnv[a.Call]; ok || a.Call == "--ssh-addrs" {
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
	} {
		if _, _, err := runCmd(t, context.Background(), args...); exitCode(err) != exitUsage {
			t.Errorf("%q: exit %d (%v); want %d", args, exitCode(err), err, exitUsage)
		}
	}
}

// A capture as Wireshark starts one: into a FIFO, with the capture
// filter mapped onto pktcap-uw's, one pcapng interface per point.
func TestExtcapCapture(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
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
	_, stderr, err := runCmd(t, context.Background(), "--capture", "--extcap-interface", "capturectl", "--fifo", fifo,
		"--extcap-capture-filter", "icmp", "--vm", "testvm2", "--duration", "2500ms", "--known-hosts", kh)
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr)
	}
	data := <-read
	sc, err := pktcap.NewNgScanner(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%v (%d bytes)", err, len(data))
	}
	frames := 0
	for {
		_, _, d, _, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(d) < 24 || d[12] != 0x08 || d[13] != 0x00 || d[23] != 1 {
			t.Fatalf("a frame that is not ICMP passed the filter: % x", d[:min(len(d), 24)])
		}
		frames++
	}
	var names []string
	for _, i := range sc.Interfaces() {
		names = append(names, i.Name)
	}
	want := []string{"esx02/vmnic2/rx", "esx02/vmnic3/rx", "esx02/50331657/PortOutput", "esx02/50331657/VnicRx"}
	if strings.Join(names, " ") != strings.Join(want, " ") || frames == 0 {
		t.Errorf("interfaces %q, %d frames; want %q and the pings", names, frames, want)
	}
}

// Linked into Wireshark's personal extcap folder, tshark lists capturectl
// and captures through it, the options given as tshark's extcap
// preferences.
func TestExtcapTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		testenv.Missing(t, "tshark not installed")
	}
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
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
	pcap := filepath.Join(t.TempDir(), "wireshark.pcapng")
	cmd = exec.Command("tshark", "-i", "capturectl", "-f", "icmp", "-o", "extcap.capturectl.vm:testvm2",
		"-o", "extcap.capturectl.duration:2500ms", "-o", "extcap.capturectl.knownhosts:"+kh, "-a", "duration:20", "-w", pcap)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tshark -i capturectl: %v\n%s", err, out)
	}
	cmd = exec.Command("tshark", "-r", pcap, "-T", "fields", "-e", "frame.interface_name", "-e", "ip.proto")
	cmd.Env = env
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 2 || f[1] != "1" {
			t.Fatalf("a line that is not an ICMP frame: %q\n%s", line, out)
		}
		seen[f[0]] = true
	}
	if !seen["esx02/50331657/PortOutput"] || !seen["esx02/vmnic2/rx"] {
		t.Errorf("interfaces seen through Wireshark: %v\n%s", seen, out)
	}
}
