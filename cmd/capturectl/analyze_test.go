package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
)

// The article's console transcripts (four runs taken at different times):
// the duplicate pair at PortOutput and none at VnicRx; no verdict, since the
// runs never captured at the same time.
func TestAnalyzeArticleConsole(t *testing.T) {
	stdout, stderr, err := runCmd(t, context.Background(), "analyze", "--date", "2020-05-04", "--team-uplink", "vmnic2",
		"../../testdata/transcripts/pktcap-uw/pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt")
	if err != nil {
		t.Fatalf("analyze: %v\n%s", err, stderr)
	}
	for _, re := range []string{
		`#3 50331657/PortOutput +3 +1 +0 `,
		`#4 50331657/VnicRx +3 +0 +0 `,
		`#1 vmnic2/rx +3 +0 +0 `,
		`11 inconclusive`,
		`was not capturing yet`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("analyze output lacks /%s/:\n%s", re, stdout)
		}
	}
}

// Console text from a 7.0+ host where one pktcap-uw session captures at
// two points (--capture PortOutput,VnicRx), pasted with the uplink runs:
// each point of the session is a point of the analysis.
func TestAnalyzeConsoleMultiPoint(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-dvs.yaml", false)
	h, err := l.Host("esx02")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := l.Net.FindPort("dvsvm2", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := esxi.Dial(ctx, esxi.SSHConfig{Host: "esx02", Addr: h.Addr, Password: h.Password, KnownHostsFile: kh, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmds := []string{"pktcap-uw --uplink vmnic2 --proto 0x01 -c 3 2>&1", "pktcap-uw --uplink vmnic3 --proto 0x01 -c 3 2>&1",
		fmt.Sprintf("pktcap-uw --switchport %d --capture PortOutput,VnicRx --proto 0x01 -c 9 2>&1", port.PortID)}
	outs := make([][]byte, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], _, _ = c.Run(ctx, cmd) })
	}
	time.Sleep(300 * time.Millisecond) // the captures have started
	if _, err := l.Net.Ping(ctx, "dvsvm1", "dvsvm2", 3, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	file := filepath.Join(t.TempDir(), "pasted.txt")
	os.WriteFile(file, bytes.Join(outs, nil), 0o600)
	stdout, stderr, err := runCmd(t, context.Background(), "analyze", "--team-uplink", "vmnic2", file)
	if err != nil {
		t.Fatalf("analyze: %v\n%s\n%s\n%s", err, stdout, stderr, bytes.Join(outs, nil))
	}
	for _, re := range []string{
		fmt.Sprintf(`#3 %d/PortOutput +6 +3 +0 `, port.PortID),
		fmt.Sprintf(`#3 %d/VnicRx +3 +0 +0 `, port.PortID),
		`ICMP echo request 192\.168\.100\.31 > 192\.168\.100\.32\n +3 delivered, duplicates removed by reverse teaming`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("analyze output lacks /%s/:\n%s", re, stdout)
		}
	}
}

// analyze reads the demo's pcapng (interfaces named by point, live
// intervals in the statistics) and gives the demo's verdicts.
func TestAnalyzeDemoPcapng(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, err := runCmd(t, context.Background(), "demo", "--duration", "2s", "--out", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr)
	}
	stdout, _, err := runCmd(t, context.Background(), "analyze", "--team-uplink", "vmnic2", "--json", filepath.Join(dir, "trace.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"delivered_dups_removed": [2-9]`).MatchString(stdout) || !strings.Contains(stdout, `"filtered_by_reverse_teaming": false`) {
		t.Errorf("analyze --json of the demo pcapng:\n%s", stdout)
	}
	// compressed, it reads the same
	data, _ := os.ReadFile(filepath.Join(dir, "trace.pcapng"))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	gz := filepath.Join(dir, "trace.pcapng.gz")
	os.WriteFile(gz, z.Bytes(), 0o600)
	stdoutGz, _, err := runCmd(t, context.Background(), "analyze", "--team-uplink", "vmnic2", "--json", gz)
	totals := regexp.MustCompile(`(?s)"totals": \{.*?\}`)
	if err != nil || totals.FindString(stdoutGz) != totals.FindString(stdout) || totals.FindString(stdout) == "" {
		t.Errorf("analyze of the gzip-compressed pcapng: %v\n%s", err, stdoutGz)
	}
}

// Per-point pcap files of frames that reach the host only on the non-team
// uplink: "filtered by reverse teaming", exit code 3.
func TestAnalyzePcapFiltered(t *testing.T) {
	cfg, err := lab.LoadConfig("../../configs/lab-non-team-uplink.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n, err := lab.NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	host, port, _ := n.FindPort("web1", 0)
	points := map[string]lab.Selector{
		"esx01/vmnic2/rx":     {Point: lab.UplinkRcv, Uplink: "vmnic2"},
		"esx01/vmnic3/rx":     {Point: lab.UplinkRcv, Uplink: "vmnic3"},
		"esx01/42/PortOutput": {Point: lab.PortOutput, PortID: port.PortID},
		"esx01/42/VnicRx":     {Point: lab.VnicRx, PortID: port.PortID},
	}
	taps := map[string]*lab.Tap{}
	for name, sel := range points {
		tp, err := n.Subscribe(host, sel, nil, 1024)
		if err != nil {
			t.Fatal(err)
		}
		taps[name] = tp
	}
	if _, err := n.Ping(context.Background(), "ext1", "web1", 3, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"analyze", "--team-uplink", "vmnic2", "--mac", port.MAC}
	var files []string
	for name, tp := range taps {
		file := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".pcap")
		f, _ := os.Create(file)
		w, _ := pktcap.NewPcapWriter(f, 0)
		// an idle point still captured from the start
		for done := false; !done; {
			select {
			case c := <-tp.C:
				w.WritePacket(c.Time, c.Data, len(c.Data))
			default:
				done = true
			}
		}
		w.Flush()
		f.Close()
		args = append(args, "--point", file+"="+name)
		files = append(files, file)
	}
	// pcap files record no drops: nothing that rests on a point not
	// seeing a frame is stated, and the user is told how to give the counts
	stdout, stderr, err := runCmd(t, context.Background(), append(args, files...)...)
	if err != nil || strings.Contains(stdout, "filtered by reverse teaming:") || !strings.Contains(stdout, "inconclusive") ||
		!strings.Contains(stdout, "are unknown (they reported no drop count)") || !strings.Contains(stderr, "pass --dropped POINT=0") {
		t.Errorf("drops unknown: exit %d (%v)\n%s\n%s", exitCode(err), err, stdout, stderr)
	}
	// with pktcap-uw's "dropped 0 packets" given, the verdict stands
	stdout, stderr, err = runCmd(t, context.Background(), append(append(args, "--dropped", "*=0"), files...)...)
	if exitCode(err) != exitFiltered {
		t.Fatalf("exit %d (%v); want %d\n%s", exitCode(err), err, exitFiltered, stdout)
	}
	if !strings.Contains(stdout, "filtered by reverse teaming: arrived on vmnic3, team uplink is vmnic2") || strings.Contains(stderr, "--dropped") {
		t.Errorf("output:\n%s\n%s", stdout, stderr)
	}
	// a count for one point: that point only
	stdout, _, _ = runCmd(t, context.Background(), append(append(args, "--dropped", "esx01/42/VnicRx=2"), files...)...)
	if !strings.Contains(stdout, "esx01/42/VnicRx dropped 2 frames") {
		t.Errorf("one point's count:\n%s", stdout)
	}
	for _, c := range []struct{ flag, want string }{
		{"esx09/vmnic2/rx=0", "--dropped: a drop count given for esx09/vmnic2/rx, which no input has (points: "},
		{"esx01/42/VnicRx", `--dropped "esx01/42/VnicRx": want POINT=N`},
		{"esx01/42/VnicRx=-1", `want POINT=N`},
		{"=3", `want POINT=N`},
	} {
		_, _, err := runCmd(t, context.Background(), append(append(args, "--dropped", c.flag), files...)...)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--dropped %s: exit %d (%v); want 2 and %q", c.flag, exitCode(err), err, c.want)
		}
	}
}

// A capture cut short (a killed run) is read up to the cut; a corrupt
// record is an error that names the file.
func TestAnalyzeCutAndCorruptPcap(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	w, _ := pktcap.NewPcapWriter(&b, 0)
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		w.WritePacket(t0.Add(time.Duration(i)*time.Second), testFrame(60, 0, i), 60)
	}
	w.Flush()
	full := b.Bytes()
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, full[:len(full)-10], 0o600)
	stdout, _, err := runCmd(t, context.Background(), "analyze", "--json", "--point", cut+"=esx01/7/VnicRx", cut)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Points []struct {
			Observations int `json:"frames"`
		} `json:"points"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Points) != 1 || doc.Points[0].Observations != 2 {
		t.Errorf("cut file: %v %+v; want the 2 whole frames read\n%s", err, doc, stdout)
	}
	bad := bytes.Clone(full)
	binary.LittleEndian.PutUint32(bad[24+16+60+8:], 61) // the second record: 61 bytes of a 60-byte frame
	corrupt := filepath.Join(dir, "corrupt.pcap")
	os.WriteFile(corrupt, bad, 0o600)
	_, _, err = runCmd(t, context.Background(), "analyze", "--point", corrupt+"=esx01/7/VnicRx", corrupt)
	if err == nil || !strings.Contains(err.Error(), "corrupt.pcap") || !strings.Contains(err.Error(), "capture length exceeds original packet length") {
		t.Errorf("corrupt file: %v", err)
	}
}

// pktcap-uw's own pcapng (-P) has one interface, not named after a
// capturectl point: --point names it.
func TestAnalyzeOneInterfacePcapng(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	w, err := pktcap.NewNgWriter(&b, []pktcap.NgInterface{{Name: "vmnic2"}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i := range 2 {
		w.WritePacket(0, t0.Add(time.Duration(i)*time.Second), testFrame(60, 0, i), 60)
	}
	w.Close()
	file := filepath.Join(dir, "pktcap.pcapng")
	os.WriteFile(file, b.Bytes(), 0o600)
	_, _, err = runCmd(t, context.Background(), "analyze", file)
	if err == nil || !strings.Contains(err.Error(), `named "vmnic2"`) || !strings.Contains(err.Error(), "--point "+file+"=") {
		t.Errorf("unnamed interface: %v", err)
	}
	stdout, _, err := runCmd(t, context.Background(), "analyze", "--json", "--point", file+"=esx01/vmnic2/rx", file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Points []struct {
			Name   string `json:"name"`
			Frames int    `json:"frames"`
		} `json:"points"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Points) != 1 || doc.Points[0].Frames != 2 || doc.Points[0].Name != "esx01/vmnic2/rx" {
		t.Errorf("named: %v %+v", err, doc)
	}
}

// Frames pasted without the banner that names their point: the error says
// what is missing, and --point names the point.
func TestAnalyzeConsoleWithoutBanner(t *testing.T) {
	text := `16:13:16.471308[1] Captured at EtherswitchDispath point, TSO not enabled, Checksum not offloaded and not verified, VLAN tag 100, length 60.
Segment[0] ---- 60 bytes:
0x0000:  0050 569d fdb1 0050 569d 4342 0806 0001
0x0010:  0800 0604 0001 0050 569d 4342 c0a8 640b
0x0020:  0000 0000 0000 c0a8 640c 0000 0000 0000
0x0030:  0000 0000 0000 0000 0000 0000
`
	file := filepath.Join(t.TempDir(), "frames.txt")
	os.WriteFile(file, []byte(text), 0o600)
	_, _, err := runCmd(t, context.Background(), "analyze", file)
	if err == nil || !strings.Contains(err.Error(), "lacks the banner") || !strings.Contains(err.Error(), "--point "+file+"=") {
		t.Errorf("no banner: %v", err)
	}
	stdout, _, err := runCmd(t, context.Background(), "analyze", "--json", "--point", file+"=esx02/vmnic2/rx", file)
	if err != nil || !strings.Contains(stdout, `"name": "frames.txt#1 esx02/vmnic2/rx"`) {
		t.Errorf("named: %v\n%s", err, stdout)
	}
}

// A pcapng with several interfaces not named after points (mergecap of
// per-point pcaps): --point FILE#N=NAME names interface N.
func TestAnalyzeNamedInterfaces(t *testing.T) {
	var b bytes.Buffer
	w, err := pktcap.NewNgWriter(&b, []pktcap.NgInterface{{Name: "po.pcap"}, {Name: "rx.pcap"}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		frame := testFrame(60, 0, i)
		at := t0.Add(time.Duration(i) * time.Second)
		w.WritePacket(0, at, frame, 60)
		w.WritePacket(1, at.Add(10*time.Microsecond), frame, 60)
		w.WritePacket(0, at.Add(20*time.Microsecond), frame, 60)
	}
	w.Close()
	file := filepath.Join(t.TempDir(), "merged.pcapng")
	os.WriteFile(file, b.Bytes(), 0o600)
	_, _, err = runCmd(t, context.Background(), "analyze", file)
	if err == nil || !strings.Contains(err.Error(), `interface 0 is named "po.pcap"`) || !strings.Contains(err.Error(), "--point "+file+"#0=") {
		t.Errorf("unnamed interfaces: %v", err)
	}
	stdout, _, err := runCmd(t, context.Background(), "analyze", "--json", "--point", file+"#0=esx01/7/PortOutput", "--point", file+"#1=esx01/7/VnicRx", file)
	if err != nil || !strings.Contains(stdout, `"delivered_dups_removed": 3`) {
		t.Errorf("named: %v\n%s", err, stdout)
	}
}

func TestAnalyzeErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.txt")
	os.WriteFile(junk, []byte("hello\n"), 0o600)
	pcap := filepath.Join(dir, "a.pcap")
	f, _ := os.Create(pcap)
	w, _ := pktcap.NewPcapWriter(f, 0)
	w.Flush()
	f.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"analyze"}, "no capture files"},
		{[]string{"analyze", junk}, "no pktcap-uw console frames"},
		{[]string{"analyze", pcap}, "name its capture point with --point"},
		{[]string{"analyze", "--point", pcap + "=esx01/bogus", pcap}, "No such capture point: bogus"},
		{[]string{"analyze", "--policy", "lacp", pcap}, `--policy: teaming policy "lacp": want srcport`},
		{[]string{"analyze", filepath.Join(dir, "missing.pcap")}, "no such file"},
	} {
		_, _, err := runCmd(t, context.Background(), c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want an error containing %q", c.args, err, c.want)
		}
	}
}

// A saved discovery by MAC or IP address marks the vNIC it named: analyze
// --target takes that one unless --nic says otherwise.
func TestPortFromTargetSelected(t *testing.T) {
	doc := `{"version": 1, "targets": [
		{"vm": "web", "nic": "Network adapter 1", "mac": "00:50:56:00:00:01", "team_uplink": "vmnic2", "teaming_policy": "loadbalance_srcid"},
		{"vm": "web", "nic": "Network adapter 2", "mac": "00:50:56:00:00:02", "team_uplink": "vmnic3", "teaming_policy": "loadbalance_srcid", "selected": true}]}`
	f := filepath.Join(t.TempDir(), "target.json")
	os.WriteFile(f, []byte(doc), 0o600)
	for _, tc := range []struct {
		args     []string
		mac, nic string
	}{
		{[]string{"--target", f}, "00:50:56:00:00:02", "vmnic3"},
		{[]string{"--target", f, "--nic", "0"}, "00:50:56:00:00:01", "vmnic2"},
	} {
		var pf portFlags
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		pf.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := pf.fromTarget(fs); err != nil {
			t.Fatal(err)
		}
		if port, err := pf.port(); err != nil || port.MAC.String() != tc.mac || port.TeamUplink != tc.nic {
			t.Errorf("%q: port %+v, %v; want MAC %s team uplink %s", tc.args, port, err, tc.mac, tc.nic)
		}
	}
}

// testFrame is an IPv4 frame of n bytes between two VMware MACs, told apart
// by its run and sequence number (bytes 20 and 21).
func testFrame(n, run, seq int) []byte {
	f := make([]byte, n)
	copy(f, []byte{0, 0x50, 0x56, 1, 2, 3, 0, 0x50, 0x56, 4, 5, 6, 0x08, 0x00, 0x45})
	f[20], f[21] = byte(run+seq>>8), byte(seq)
	return f
}
