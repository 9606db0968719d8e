package lab

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
)

// Each build numbers ports as it does (configs/lab-versions.yaml: vSwitch0
// with vmnic0 and vmk0, vSwitch1 with vmnic2 and vmnic3, one VM), and
// everything that prints a port number agrees: esxcli network vm port
// list, net-stats -l, pktcap-uw's banner for --switchport.
func TestPortNumberingByVersion(t *testing.T) {
	l := startLab(t, "../configs/lab-versions.yaml", Options{})
	for _, c := range []struct {
		host, vm     string
		port, uplink uint32 // the VM's port and its team uplink's (vmnic2)
		vmk0, vmnic0 uint32
	}{
		// 6.7 and earlier: a portset per byte, 0x02000000 and 0x03000000
		{"esx55", "vm55", 50331657, 50331650, 33554436, 33554434},
		{"esx67", "vm67", 50331657, 50331650, 33554436, 33554434},
		// 7.0 and later: portsets 0x04 and 0x06, a host-wide index (vmnic0
		// 6 with its shadow 7, vmk0 8, vmnic2 9, vmnic3 11, the VM 6 later)
		{"esx70", "vm70", 0x06000013, 0x86000009, 0x04000008, 0x84000006},
		{"esx80", "vm80", 0x06000013, 0x86000009, 0x04000008, 0x84000006},
		{"esx90", "vm90", 0x06000013, 0x86000009, 0x04000008, 0x84000006},
	} {
		t.Run(c.host, func(t *testing.T) {
			cl := dial(t, l, c.host)
			run := func(cmd string) string { t.Helper(); return mustRun(t, cl, cmd) }
			vms, err := esxi.ParseVMList(strings.NewReader(run("esxcli network vm list")))
			if err != nil || len(vms) != 1 || vms[0].Name != c.vm {
				t.Fatalf("vm list: %+v %v", vms, err)
			}
			ports, err := esxi.ParseVMPortList(strings.NewReader(run(fmt.Sprintf("esxcli network vm port list -w %d", vms[0].WorldID))))
			if err != nil || len(ports) != 1 || ports[0].PortID != c.port || ports[0].UplinkPortID != c.uplink || ports[0].TeamUplink != "vmnic2" {
				t.Fatalf("vm port list: %+v %v; want port %d, uplink port %d", ports, err, c.port, c.uplink)
			}
			ns, err := esxi.ParseNetStatsPorts(strings.NewReader(run("net-stats -l")))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]uint32{}
			for _, p := range ns {
				got[p.ClientName] = p.PortNum
			}
			// vmnic3 comes after vmnic2's shadow port on every build
			want := map[string]uint32{"vmnic0": c.vmnic0, "vmk0": c.vmk0, "vmnic2": c.uplink, "vmnic3": c.uplink + 2, c.vm + ".eth0": c.port}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("net-stats -l: %s is %d; want %d (%v)", k, got[k], v, got)
				}
			}
			if l, _ := l.Net.Ports(c.host); len(l) != 1 || l[0].PortID != c.port {
				t.Errorf("the model's port (what vCenter is given): %+v", l)
			}
			// pktcap-uw at the port: its banner names it, newer builds print
			// 12-digit thread IDs
			stop := keepPinging(t, l.Net, "ext1", c.vm, 20*time.Millisecond)
			r := runSSH(cl, fmt.Sprintf("pktcap-uw --switchport %d --dir 1 -c 1 --proto 0x01", c.port))
			stop()
			if r.err != nil || !strings.Contains(r.stderr, fmt.Sprintf("The switch port id is 0x%08x", c.port)) {
				t.Fatalf("pktcap-uw: %v\n%s", r.err, r.stderr)
			}
			recs, err := pktcap.ReadConsole(strings.NewReader(r.stdout))
			if err != nil || len(recs) == 0 {
				t.Errorf("console output: %v %q", err, r.stdout)
			}
			if modern := c.port>>24 >= 4; modern != strings.Contains(r.stderr, "Main thread: ") {
				t.Errorf("thread lines on %s: %q", c.host, r.stderr)
			} else if modern {
				var main uint64
				fmt.Sscanf(r.stderr[strings.Index(r.stderr, "Main thread: "):], "Main thread: %d", &main)
				if len(fmt.Sprint(main)) != 12 {
					t.Errorf("Main thread %d: want 12 digits as real builds print", main)
				}
			}
		})
	}
}

// pktcap-uw accepts what real hosts run: --vmk vmk0 (the lab carries no
// vmknic traffic: nothing is dumped until it is stopped), --dvfilter on a
// vNIC's filter (the frames the vNIC sends and receives), and on 5.5 to 6.5
// the file-mode progress line.
func TestPktcapVmkDvfilterProgress(t *testing.T) {
	l := startLab(t, "../configs/lab-versions.yaml", Options{})
	c90 := dial(t, l, "esx90")

	// --vmk vmk0 runs, prints its banner, and ends on a signal with 0 frames
	s, err := c90.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdout, _ := s.StdoutPipe()
	stderr, _ := s.StderrPipe()
	if err := s.Start("echo $$ >&2; exec pktcap-uw --vmk vmk0"); err != nil {
		t.Fatal(err)
	}
	outc := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stdout); outc <- string(b) }()
	br := bufio.NewReader(stderr)
	var pid int
	if _, err := fmt.Fscanln(br, &pid); err != nil {
		t.Fatal(err)
	}
	var banner strings.Builder
	for !strings.Contains(banner.String(), "Vsock connection from port") { // the session is up
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("banner: %v\n%s", err, banner.String())
		}
		banner.WriteString(line)
	}
	mustRun(t, c90, fmt.Sprintf("kill -INT %d", pid))
	rest, _ := io.ReadAll(br)
	if err := s.Wait(); err != nil {
		t.Fatalf("pktcap-uw --vmk vmk0: %v\n%s%s", err, banner.String(), rest)
	}
	if o := <-outc; !strings.Contains(banner.String(), "The name of the vmk is vmk0.") || !strings.Contains(string(rest), "Dumped 0 packet to console, dropped 0 packets.") || o != "" {
		t.Errorf("--vmk vmk0: stdout %q stderr %q", o, banner.String()+string(rest))
	}
	if r := runSSH(c90, "pktcap-uw --vmk vmk7"); r.err == nil || !strings.Contains(r.stderr, "Failed to find the vmknic vmk7") {
		t.Errorf("--vmk vmk7: %v %q", r.err, r.stderr)
	}

	// --dvfilter: the VM's echo replies (sent) and requests (received)
	stop := keepPinging(t, l.Net, "ext1", "vm90", 20*time.Millisecond)
	r := runSSH(c90, "pktcap-uw --dvfilter nic-vm90-eth0-vmware-sfw.2 --capture PreDVFilter --proto 0x01 -c 4")
	stop()
	if r.err != nil || !strings.Contains(r.stderr, "The name of the dvfilter is nic-vm90-eth0-vmware-sfw.2.") {
		t.Fatalf("--dvfilter: %v\n%s", r.err, r.stderr)
	}
	recs, err := pktcap.ReadConsole(strings.NewReader(r.stdout))
	var n int
	for _, rec := range recs {
		if f, ok := rec.(*pktcap.ConsoleFrame); ok {
			n++
			if f.Point != "PreDVFilter" {
				t.Errorf("frame at %s; want PreDVFilter", f.Point)
			}
		}
	}
	if err != nil || n != 4 {
		t.Errorf("--dvfilter frames: %d, %v\n%s", n, err, r.stdout)
	}
	ports := mustRun(t, c90, "esxcli network vm port list -w $(esxcli network vm list | awk 'NR==3{print $1}')")
	if !strings.Contains(ports, "   Active Filters: nic-vm90-eth0-vmware-sfw.2\n") {
		t.Errorf("vm port list: want the filter among Active Filters:\n%s", ports)
	}
	if r := runSSH(c90, "pktcap-uw --dvfilter nosuch --stage 1"); r.err == nil || !strings.Contains(r.stderr, "Failed to find the dvfilter nosuch") {
		t.Errorf("--dvfilter nosuch: %v %q", r.err, r.stderr)
	}
	if r := runSSH(c90, "pktcap-uw --dvfilter nic-vm90-eth0-vmware-sfw.2"); r.err == nil || !strings.Contains(r.stderr, "needs a capture point") {
		t.Errorf("--dvfilter without a point: %v %q", r.err, r.stderr)
	}

	// the progress line: 5.5 writes it to stderr in file mode, 6.7 does not;
	// its form is the real transcript's, the count the only variable
	b, err := os.ReadFile("../testdata/transcripts/pktcap-uw/pktcap-uw-file-progress-5.5-6.5-era.txt")
	if err != nil {
		t.Fatal(err)
	}
	seen := regexp.MustCompile(`Dump: \d+, broken : 0, drop: 0, file err: 0`).FindString(string(b))
	if seen == "" {
		t.Fatal("the transcript has no progress line")
	}
	progressRE := regexp.MustCompile(regexp.QuoteMeta(regexp.MustCompile(`^Dump: \d+`).ReplaceAllString(seen, "Dump: 2")))
	for host, want := range map[string]bool{"esx55": true, "esx67": false} {
		c := dial(t, l, host)
		vm := "vm" + host[3:]
		stop := keepPinging(t, l.Net, "ext1", vm, 20*time.Millisecond)
		r := runSSH(c, "pktcap-uw --uplink vmnic2 --proto 0x01 -c 2 -o /tmp/x.pcap")
		stop()
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", host, r.err, r.stderr)
		}
		if got := progressRE.FindString(r.stderr); (got != "") != want || want && !strings.HasPrefix(r.stderr[strings.LastIndex(r.stderr, got)+len(got):], "Receive thread exiting") {
			t.Errorf("%s: progress line %v, want %v:\n%q", host, got, want, r.stderr)
		}
	}
}

// pktcap-uw --trace prints, for every frame copy the host frees, the points
// it passed, as the real console output (read back by the same reader as
// real transcripts): the echo request arriving on the team uplink reaches
// VnicRx, the mirrored copy on vmnic3 stops after PortOutput (reverse
// teaming), the reply leaves through UplinkSnd.
func TestPktcapTrace(t *testing.T) {
	l := startLab(t, "../configs/lab-versions.yaml", Options{})
	for _, host := range []string{"esx67", "esx90"} {
		c := dial(t, l, host)
		stop := keepPinging(t, l.Net, "ext1", "vm"+host[3:], 20*time.Millisecond)
		r := runSSH(c, "pktcap-uw --trace --proto 0x01 -c 9")
		stop()
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", host, r.err, r.stderr)
		}
		recs, err := pktcap.ReadConsole(strings.NewReader(r.stdout))
		if err != nil {
			t.Fatalf("%s: %v\n%s", host, err, r.stdout)
		}
		paths := map[string]int{}
		for _, rec := range recs {
			f, ok := rec.(*pktcap.ConsoleFrame)
			if !ok {
				continue
			}
			var pts []string
			for _, h := range f.Trace {
				pts = append(pts, h.Point)
			}
			if f.Point != "PktFree" || f.CapLength != 24 || f.Length != 98 || len(f.Data) != 0 {
				t.Errorf("%s: record %+v", host, f)
			}
			paths[strings.Join(pts, " ")]++
		}
		for _, p := range []string{
			"UplinkRcv PortInput PortOutput VnicRx PktFree", // the request on vmnic2
			"UplinkRcv PortInput PortOutput PktFree",        // its mirrored copy on vmnic3
			"VnicTx PortInput PortOutput UplinkSnd PktFree", // the reply
		} {
			if paths[p] < 2 {
				t.Errorf("%s: path %q seen %d times; paths %v\n%s", host, p, paths[p], paths, r.stdout)
			}
		}
		if r := runSSH(c, "pktcap-uw --trace -o /tmp/t.pcap"); r.err == nil || !strings.Contains(r.stderr, "console only") {
			t.Errorf("%s: --trace -o: %v %q", host, r.err, r.stderr)
		}
	}
}
