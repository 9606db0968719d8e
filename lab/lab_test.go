package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/pktcap"
)

// startLab is labtest.Start for the lab's own tests, which cannot import
// labtest (it imports lab): the lab of a topology file without background
// traffic, closed at cleanup, then the goroutine-leak check.
func startLab(t *testing.T, path string, opts Options) *Lab {
	t.Helper()
	cfg := loadTestConfig(t, path)
	testenv.CheckGoroutines(t)
	opts.NoTraffic = true
	l, err := Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return l
}

// dial logs in as ESXi expects: keyboard-interactive with the password, and
// the host key pinned.
func dial(t *testing.T, l *Lab, host string) *ssh.Client {
	t.Helper()
	info, err := l.Host(host)
	if err != nil {
		t.Fatal(err)
	}
	_, _, pub, _, _, err := ssh.ParseKnownHosts([]byte(info.KnownHostsLine))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", info.Addr, &ssh.ClientConfig{
		User: info.User,
		Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(name, instr string, qs []string, echos []bool) ([]string, error) {
			ans := make([]string, len(qs))
			for i := range qs {
				ans[i] = info.Password
			}
			return ans, nil
		})},
		HostKeyCallback: ssh.FixedHostKey(pub),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type result struct {
	stdout, stderr string
	err            error
}

func runSSH(c *ssh.Client, cmd string) result {
	s, err := c.NewSession()
	if err != nil {
		return result{err: err}
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(cmd)
	return result{o.String(), e.String(), err}
}

// mustRun runs cmd over SSH and returns its stdout, failing the test
// when it fails.
func mustRun(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	r := runSSH(c, cmd)
	if r.err != nil {
		t.Fatalf("%s: %v\n%s", cmd, r.err, r.stderr)
	}
	return r.stdout
}

// keepPinging pings from one VM to another until stop is closed.
func keepPinging(t *testing.T, n *Network, from, to string, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := n.Ping(ctx, from, to, 1, 0); err != nil && ctx.Err() == nil {
				t.Errorf("ping: %v", err)
				return
			}
			sleepCtx(ctx, every)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// The article's four pktcap-uw runs, with the article's command lines, over
// SSH against the receiving host while testvm1 pings testvm2.
func TestArticleCaptureOverSSH(t *testing.T) {
	l := startLab(t, "../configs/lab-article.yaml", Options{})
	c := dial(t, l, "esx02")
	cmds := []string{
		"pktcap-uw --uplink vmnic2 -c 3 --proto 0x01",
		"pktcap-uw --uplink vmnic3 -c 3 --proto 0x01",
		"pktcap-uw --switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture PortOutput",
		"pktcap-uw --switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture VnicRx",
	}
	results := make([]result, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = runSSH(c, cmd) }()
	}
	stop := keepPinging(t, l.Net, "testvm1", "testvm2", 20*time.Millisecond)
	wg.Wait()
	stop()
	frames := make([][]*pktcap.ConsoleFrame, len(cmds))
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v\nstderr: %s", cmds[i], r.err, r.stderr)
		}
		recs, err := pktcap.ReadConsole(strings.NewReader(r.stdout))
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if f, ok := rec.(*pktcap.ConsoleFrame); ok {
				frames[i] = append(frames[i], f)
			}
		}
		if len(frames[i]) != 3 {
			t.Fatalf("%s: got %d frames; want 3\n%s", cmds[i], len(frames[i]), r.stdout)
		}
		if !strings.Contains(r.stderr, "Dumped 3 packet to console, dropped 0 packets.") {
			t.Errorf("%s: stderr lacks the summary:\n%s", cmds[i], r.stderr)
		}
	}
	// Banner lines as in the article (port numbers vary by session).
	wantBanner := []string{"The switch port id is 0x03000009", "The dir is Output", "To capture 3 packets",
		"The session filter IP protocol is 0x01", "The session capture point is PortOutput", "Output the packet info to console."}
	for _, w := range wantBanner {
		if !strings.Contains(results[2].stderr, w+"\n") {
			t.Errorf("PortOutput banner lacks %q:\n%s", w, results[2].stderr)
		}
	}
	for i := 0; i < 2; i++ {
		for _, f := range frames[i] {
			if f.Point != "EtherswitchDispath" || f.VLAN != 100 || f.Length != 98 {
				t.Errorf("%s: frame %+v; want EtherswitchDispath, VLAN 100, length 98", cmds[i], f)
			}
		}
	}
	po := frames[2]
	if !bytes.Equal(po[0].Data, po[1].Data) {
		t.Errorf("PortOutput: frames 1 and 2 differ; want the duplicate pair of one echo request")
	}
	if d := po[1].TimeOfDay - po[0].TimeOfDay; d <= 0 || d > 100*time.Microsecond {
		t.Errorf("PortOutput: duplicates %v apart; want microseconds", d)
	}
	if bytes.Equal(po[1].Data, po[2].Data) {
		t.Errorf("PortOutput: frame 3 repeats frame 2; want the next echo request")
	}
	rx := frames[3]
	for i, f := range rx {
		if f.Point != "VnicRx" || f.VLAN != -1 {
			t.Errorf("VnicRx frame %d: point %s VLAN %d; want VnicRx without VLAN", i, f.Point, f.VLAN)
		}
		if i > 0 && bytes.Equal(rx[i-1].Data, f.Data) {
			t.Errorf("VnicRx: frame %d repeats frame %d; want each echo once", i+1, i)
		}
	}
}

// A pktcap-uw whose SSH channel closed keeps running (and stays in ps) until
// it next writes; kill PID ends it.
func TestOrphanedPktcap(t *testing.T) {
	l := startLab(t, "../configs/lab-article.yaml", Options{})
	c := dial(t, l, "esx02")
	start := func() int {
		t.Helper()
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		stdout, _ := s.StdoutPipe()
		stderr, _ := s.StderrPipe()
		if err := s.Start("echo $$ >&2; exec pktcap-uw --uplink vmnic2 --proto 0x01 -o -"); err != nil {
			t.Fatal(err)
		}
		pid := readPID(t, stderr)
		hdr := make([]byte, 24)
		if _, err := io.ReadFull(stdout, hdr); err != nil {
			t.Fatalf("pcap header: %v", err)
		}
		s.Close() // the channel closes; the process is not told
		return pid
	}
	listed := func(pid int) bool {
		r := runSSH(c, "ps -c")
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, line := range strings.Split(r.stdout, "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && f[0] == fmt.Sprint(pid) && strings.Contains(line, "pktcap-uw") {
				return true
			}
		}
		return false
	}
	pid := start()
	time.Sleep(50 * time.Millisecond)
	if !listed(pid) {
		t.Fatalf("pktcap-uw %d is not in ps after its channel closed; want it to keep running", pid)
	}
	// Its next write fails: it ends.
	if _, err := l.Net.Ping(context.Background(), "testvm1", "testvm2", 1, 0); err != nil {
		t.Fatal(err)
	}
	waitGone(t, l, "esx02", pid)

	pid = start()
	if !listed(pid) {
		t.Fatalf("second pktcap-uw %d not listed", pid)
	}
	if r := runSSH(c, fmt.Sprintf("kill %d", pid)); r.err != nil {
		t.Fatalf("kill: %v %s", r.err, r.stderr)
	}
	waitGone(t, l, "esx02", pid)
	if r := runSSH(c, fmt.Sprintf("kill %d", pid)); r.err == nil || !strings.Contains(r.stderr, "No such process") {
		t.Errorf("kill of a gone PID: %v %q; want busybox's No such process", r.err, r.stderr)
	}
}

func waitGone(t *testing.T, l *Lab, host string, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		procs, _ := l.Processes(host)
		found := false
		for _, p := range procs {
			found = found || p.PID == pid
		}
		if !found {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d still runs on %s", pid, host)
}

// A reader that does not keep up makes pktcap-uw drop, and it says so.
func TestSlowReaderDrops(t *testing.T) {
	l := startLab(t, "../configs/lab-article.yaml", Options{})
	c := dial(t, l, "esx02")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdout, _ := s.StdoutPipe()
	var stderr lockedBuffer
	s.Stderr = &stderr
	if err := s.Start("echo $$ >&2; exec pktcap-uw --uplink vmnic2 -o -"); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(stdout, hdr); err != nil {
		t.Fatal(err)
	}
	// Nobody reads stdout while 60,000 frames go by: the SSH window fills,
	// then the host's capture buffer.
	if _, err := l.Net.Generate(context.Background(), GenSpec{From: "testvm1", To: "testvm2", Count: 60000, Size: 200}); err != nil {
		t.Fatal(err)
	}
	pid := stderr.WaitPID(t)
	if r := runSSH(c, fmt.Sprintf("kill -INT %d", pid)); r.err != nil {
		t.Fatalf("kill: %v", r.err)
	}
	n, _ := io.Copy(io.Discard, stdout)
	s.Wait()
	var sum pktcap.Summary
	found := false
	for _, line := range strings.Split(stderr.String(), "\n") {
		if sm, ok := pktcap.ParseSummary(line); ok {
			sum, found = sm, true
		}
	}
	if !found {
		t.Fatalf("no summary line in stderr:\n%s", stderr.String())
	}
	// Frames still queued in the capture buffer when the signal came are
	// neither dumped nor counted as dropped.
	if buf := 4096; sum.Dropped == 0 || sum.Dumped == 0 || sum.Dumped+sum.Dropped+buf < 60000 {
		t.Errorf("summary %+v after 60000 frames; want drops reported and dumped+dropped >= 60000-%d", sum, buf)
	}
	if want := int64(sum.Dumped) * (16 + 200); n < want-int64(sum.Dumped)*16 {
		t.Errorf("read %d pcap bytes for %d dumped frames", n, sum.Dumped)
	}
}

// lockedBuffer collects an SSH stream (stderr) written by the session's
// own goroutine; WaitPID waits for what the test needs from it.
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed at the next Write
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return l.b.Write(p)
}

// WaitPID waits (up to 10 s) for the first line of the stream — the
// "echo $$ >&2" of the command — and returns the PID it holds. The stream
// is copied by the SSH session's goroutine: that the command has moved on
// (its pcap header arrived on stdout) does not mean the line arrived too.
func (l *lockedBuffer) WaitPID(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		l.mu.Lock()
		line, _, complete := strings.Cut(l.b.String(), "\n")
		ch := l.changed
		if !complete && ch == nil {
			ch = make(chan struct{})
			l.changed = ch
		}
		l.mu.Unlock()
		if complete {
			return parsePID(t, line)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no PID line on stderr within 10s; got %q", l.String())
		}
	}
}

func parsePID(t *testing.T, line string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		t.Fatalf("first stderr line %q: want the PID", line)
	}
	return pid
}

// readPID reads the first line of r (a stderr pipe), the PID, waiting up
// to 10 s for it.
func readPID(t *testing.T, r io.Reader) int {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		return parsePID(t, line)
	case <-time.After(10 * time.Second):
		t.Fatal("no PID line on stderr within 10s")
		return 0
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// capture runs pktcap-uw with args and "-o -" on host over SSH, runs
// traffic once the capture is subscribed (its pcap header arrived), then
// stops it with SIGINT and returns the frames it streamed.
func capture(t *testing.T, l *Lab, c *ssh.Client, args string, traffic func()) []pktcap.Packet {
	t.Helper()
	host := hostOf(t, l, c)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdout, _ := s.StdoutPipe()
	var stderr lockedBuffer
	s.Stderr = &stderr
	if err := s.Start("echo $$ >&2; exec pktcap-uw " + args + " -o -"); err != nil {
		t.Fatal(err)
	}
	r, err := pktcap.NewCaptureReader(stdout)
	if err != nil {
		t.Fatalf("pktcap-uw %s: %v\n%s", args, err, stderr.String())
	}
	// the session's taps: those its pktcap-uw subscribed (other captures
	// may run on the host at the same time); they exist once the pcap
	// header was written
	pid := stderr.WaitPID(t)
	taps := processTaps(l.Net, host, pid)
	var (
		mu   sync.Mutex
		pkts []pktcap.Packet
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			p, err := r.Next()
			if err != nil {
				return
			}
			p.Data = append([]byte(nil), p.Data...)
			mu.Lock()
			pkts = append(pkts, p)
			mu.Unlock()
		}
	}()
	traffic()
	// The lab's pktcap-uw, like the real one, loses what it captured but
	// had not dumped when a signal stops it: signal only once every frame
	// its taps matched (and did not drop) was read.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var want uint64
		for _, tp := range taps {
			want += tp.Matched() - tp.Dropped()
		}
		mu.Lock()
		got := uint64(len(pkts))
		mu.Unlock()
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pktcap-uw %s: %d frames read of the %d its taps matched, after 10 s", args, got, want)
		}
		time.Sleep(time.Millisecond)
	}
	if res := runSSH(c, fmt.Sprintf("kill -INT %d", pid)); res.err != nil {
		t.Fatalf("kill -INT %d: %v", pid, res.err)
	}
	<-done
	s.Wait()
	if !strings.Contains(stderr.String(), "dropped 0 packets") {
		t.Errorf("pktcap-uw %s: %s", args, stderr.String())
	}
	return pkts
}

// hostOf is the name of the lab host c is logged in to.
func hostOf(t *testing.T, l *Lab, c *ssh.Client) string {
	t.Helper()
	for _, h := range l.Hosts() {
		if h.Addr == c.RemoteAddr().String() {
			return h.Name
		}
	}
	t.Fatalf("no lab host at %s", c.RemoteAddr())
	return ""
}

// processTaps lists the taps a process (a virtual PID) subscribed on a host.
func processTaps(n *Network, host string, pid int) []*Tap {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostBy[host]
	var taps []*Tap
	add := func(tl tapList) {
		for _, tp := range tl {
			if tp.owner == pid {
				taps = append(taps, tp)
			}
		}
	}
	add(h.dropTaps)
	add(h.traceTaps)
	for _, vs := range h.vswitches {
		for _, u := range vs.uplinks {
			for _, tl := range u.taps {
				add(tl)
			}
		}
		for _, p := range vs.ports {
			for _, tl := range p.taps {
				add(tl)
			}
		}
	}
	return taps
}

// pktcap-uw -o FILE writes a pcap on the host's filesystem; -h prints the
// real usage text; bad options fail like the tool.
func TestPktcapFileAndErrors(t *testing.T) {
	l := startLab(t, "../configs/lab-article.yaml", Options{})
	c := dial(t, l, "esx02")
	done := make(chan result, 1)
	go func() { done <- runSSH(c, "pktcap-uw --uplink vmnic2 --proto 0x01 -c 2 -o /tmp/x.pcap") }()
	stop := keepPinging(t, l.Net, "testvm1", "testvm2", 20*time.Millisecond)
	r := <-done
	stop()
	if r.err != nil || r.stdout != "" || !strings.Contains(r.stderr, "Dumped 2 packet to file /tmp/x.pcap, dropped 0 packets.") {
		t.Fatalf("file capture: %v stdout %q stderr %q", r.err, r.stdout, r.stderr)
	}
	data, err := l.ReadFile("esx02", "/tmp/x.pcap")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := pktcap.NewCaptureReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if p, err := rd.Next(); err != nil || len(p.Data) != 98 {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Errorf("third packet: %v; want EOF", err)
	}
	if r := runSSH(c, "pktcap-uw -h"); r.err != nil || !strings.HasPrefix(r.stdout, "Packet Capture and Trace command usage:\n") {
		t.Errorf("pktcap-uw -h: %v %q", r.err, r.stdout)
	}
	for cmd, want := range map[string]string{
		"pktcap-uw --uplink vmnic9":                                  "Failed to find the uplink vmnic9",
		"pktcap-uw --switchport 50331657 --capture Bogus":            "No such capture point: Bogus",
		"pktcap-uw --switchport 50331657 --capture PortInput,VnicRx": "No such capture point: PortInput,VnicRx",
		"pktcap-uw --uplink 'vmnic2;reboot'":                         "vmnic2;reboot",
	} {
		r := runSSH(c, cmd)
		if r.err == nil || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: %v %q; want an error naming %q", cmd, r.err, r.stderr, want)
		}
	}
}

// Generate paces frames at the asked rate (a lower bound on the time taken,
// which cannot flake on a slow machine).
func TestGenerateRate(t *testing.T) {
	n := newTestNetwork(t, "../configs/lab-article.yaml")
	start := time.Now()
	sent, err := n.Generate(context.Background(), GenSpec{From: "testvm1", To: "testvm2", Rate: 10000, Count: 2000, Size: 100})
	if err != nil || sent != 2000 {
		t.Fatalf("Generate: %d, %v", sent, err)
	}
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Errorf("2000 frames at 10000/s took %v; want about 200ms", d)
	}
}
