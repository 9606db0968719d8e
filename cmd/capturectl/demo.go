package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/configs"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
)

// demoPoint is one capture point of the demo: the pktcap-uw options and the
// interface name in the pcapng.
type demoPoint struct {
	name string
	args string
}

// runDemo starts the embedded lab with the article's topology, captures
// with pktcap-uw over SSH at both uplinks and at PortOutput and VnicRx of
// testvm2's port while testvm1 pings testvm2, and shows what each point
// saw. The full verdict engine (trace) builds on the same steps.
func runDemo(ctx context.Context, e *env, args []string) error {
	fset := newFlagSet(e, "demo", "demo [--duration D] [--out DIR]")
	dur := fset.Duration("duration", 4*time.Second, "how long to capture")
	out := fset.String("out", "", "`dir` for the pcapng (default: a new temporary directory)")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if *dur <= 0 || *dur > 10*time.Minute {
		return usagef("demo: --duration %v out of range (0 to 10m)", *dur)
	}
	cfg, _, err := loadTopology(configs.Default)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "Starting the emulated lab (configs/lab-article.yaml): esx01 and esx02, ESXi 6.7, vSwitch1 with vmnic2+vmnic3,")
	fmt.Fprintln(e.stderr, "route based on originating port ID, VLAN 100; the switch mirrors esx02/vmnic2's traffic into esx02/vmnic3.")
	l, err := lab.Start(ctx, cfg, lab.Options{NoTraffic: true})
	if err != nil {
		return err
	}
	defer l.Close()
	const host = "esx02"
	_, port, err := l.Net.FindPort("testvm2", 0)
	if err != nil {
		return err
	}
	info, err := l.Host(host)
	if err != nil {
		return err
	}
	points := []demoPoint{
		{host + "/vmnic2/rx", "--uplink vmnic2 --proto 0x01"},
		{host + "/vmnic3/rx", "--uplink vmnic3 --proto 0x01"},
		{fmt.Sprintf("%s/%d/PortOutput", host, port.PortID), fmt.Sprintf("--switchport %d --dir 1 --capture PortOutput --proto 0x01", port.PortID)},
		{fmt.Sprintf("%s/%d/VnicRx", host, port.PortID), fmt.Sprintf("--switchport %d --dir 1 --capture VnicRx --proto 0x01", port.PortID)},
	}
	client, err := dialLab(ctx, info)
	if err != nil {
		return err
	}
	defer client.Close()

	fmt.Fprintf(e.stderr, "Capturing for %v on %s (ssh %s): testvm2 is port %d, team uplink %s.\n", *dur, host, info.Addr, port.PortID, port.TeamUplink)
	caps := make([]*demoCapture, len(points))
	for i, p := range points {
		fmt.Fprintf(e.stderr, "  pktcap-uw %s -o -\n", p.args)
		c, err := startDemoCapture(client, p)
		if err != nil {
			for _, c := range caps[:i] {
				c.stop(client)
			}
			return err
		}
		caps[i] = c
	}
	pingCtx, stopPing := context.WithTimeout(ctx, *dur)
	var wg sync.WaitGroup
	wg.Add(1)
	var pingRes lab.PingResult
	go func() {
		defer wg.Done()
		pingRes, _ = l.Net.Ping(pingCtx, "testvm1", "testvm2", int(*dur/time.Second)+1, time.Second)
	}()
	<-pingCtx.Done()
	stopPing()
	wg.Wait()
	var errs []error
	for _, c := range caps {
		errs = append(errs, c.stop(client))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "capturectl-demo-"); err != nil {
			return err
		}
	}
	file, err := writeDemoPcapng(dir, caps)
	if err != nil {
		return err
	}
	printDemoReport(e.stdout, caps, port, pingRes)
	fmt.Fprintf(e.stdout, "\nAll captures, one pcapng interface per point: %s\n", file)
	return nil
}

// dialLab logs in to an emulated host as to ESXi: keyboard-interactive,
// host key pinned to the one the lab reports.
func dialLab(ctx context.Context, h lab.HostInfo) (*ssh.Client, error) {
	_, _, pub, _, _, err := ssh.ParseKnownHosts([]byte(h.KnownHostsLine))
	if err != nil {
		return nil, fmt.Errorf("lab host %s: known hosts line: %w", h.Name, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", h.Name, err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, h.Addr, &ssh.ClientConfig{
		User: h.User,
		Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			ans := make([]string, len(qs))
			for i := range ans {
				ans[i] = h.Password
			}
			return ans, nil
		})},
		HostKeyCallback: ssh.FixedHostKey(pub),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s: %w", h.Name, err)
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

type demoCapture struct {
	point   demoPoint
	sess    *ssh.Session
	pid     int
	packets []pktcap.Packet
	stderr  bytes.Buffer
	done    chan error
	summary pktcap.Summary
}

func startDemoCapture(c *ssh.Client, p demoPoint) (*demoCapture, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: ssh session: %w", p.name, err)
	}
	stdout, _ := s.StdoutPipe()
	stderr, _ := s.StderrPipe()
	if err := s.Start("echo $$ >&2; exec pktcap-uw " + p.args + " -o -"); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: start pktcap-uw: %w", p.name, err)
	}
	dc := &demoCapture{point: p, sess: s, done: make(chan error, 1)}
	if _, err := fmt.Fscanln(stderr, &dc.pid); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: read the remote PID: %w", p.name, err)
	}
	r, err := pktcap.NewCaptureReader(stdout)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: pcap stream: %w", p.name, err)
	}
	var errDone = make(chan struct{})
	go func() {
		io.Copy(&dc.stderr, stderr)
		close(errDone)
	}()
	go func() {
		for {
			pkt, err := r.Next()
			if err != nil {
				<-errDone
				if errors.Is(err, io.EOF) {
					err = nil
				}
				dc.done <- err
				return
			}
			pkt.Data = append([]byte(nil), pkt.Data...)
			dc.packets = append(dc.packets, pkt)
		}
	}()
	return dc, nil
}

// stop interrupts the remote pktcap-uw (SIGINT, as an operator's Ctrl-C)
// and waits for its stream to end.
func (dc *demoCapture) stop(c *ssh.Client) error {
	s, err := c.NewSession()
	if err == nil {
		err = s.Run(fmt.Sprintf("kill -INT %d", dc.pid))
		s.Close()
	}
	if err != nil {
		return fmt.Errorf("%s: stop pktcap-uw %d: %w", dc.point.name, dc.pid, err)
	}
	select {
	case err = <-dc.done:
	case <-time.After(10 * time.Second):
		err = errors.New("no end of stream 10s after SIGINT")
	}
	dc.sess.Close()
	for _, line := range strings.Split(dc.stderr.String(), "\n") {
		if s, ok := pktcap.ParseSummary(line); ok {
			dc.summary = s
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dc.point.name, err)
	}
	return nil
}

func writeDemoPcapng(dir string, caps []*demoCapture) (string, error) {
	path := filepath.Join(dir, "demo.pcapng")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	var ifaces []pktcap.NgInterface
	for _, c := range caps {
		ifaces = append(ifaces, pktcap.NgInterface{Name: c.point.name, Description: "pktcap-uw " + c.point.args})
	}
	w, err := pktcap.NewNgWriter(f, ifaces)
	if err != nil {
		f.Close()
		return "", err
	}
	// merge by time, as the points saw them
	idx := make([]int, len(caps))
	for {
		best := -1
		for i, c := range caps {
			if idx[i] < len(c.packets) && (best < 0 || c.packets[idx[i]].Time.Before(caps[best].packets[idx[best]].Time)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		p := caps[best].packets[idx[best]]
		idx[best]++
		if err := w.WritePacket(best, p.Time, p.Data, p.OrigLen); err != nil {
			f.Close()
			return "", err
		}
	}
	for i, c := range caps {
		w.SetStats(i, pktcap.NgStats{Dropped: uint64(c.summary.Dropped)})
	}
	if err := w.Close(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// printDemoReport shows per point counts, then each echo request with the
// number of copies every point saw.
func printDemoReport(w io.Writer, caps []*demoCapture, port lab.PortInfo, ping lab.PingResult) {
	fmt.Fprintf(w, "testvm1 sent %d echo requests to testvm2 (%d replies).\n\n", ping.Sent, ping.Received)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "capture point\tframes\tdropped by pktcap-uw")
	for _, c := range caps {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.point.name, len(c.packets), c.summary.Dropped)
	}
	tw.Flush()
	fmt.Fprintln(w)
	type row struct {
		first  time.Time
		desc   string
		copies []int
	}
	var rows []*row
	byKey := map[string]*row{}
	for i, c := range caps {
		for _, p := range c.packets {
			k := string(p.Data)
			r := byKey[k]
			if r == nil {
				r = &row{first: p.Time, desc: describeICMP(p.Data), copies: make([]int, len(caps))}
				byKey[k] = r
				rows = append(rows, r)
			}
			if p.Time.Before(r.first) {
				r.first = p.Time
			}
			r.copies[i]++
		}
	}
	fmt.Fprintln(tw, "first seen (UTC)\tframe\tvmnic2\tvmnic3\tPortOutput\tVnicRx")
	dupRemoved := 0
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s", r.first.UTC().Format("15:04:05.000000"), r.desc)
		for _, n := range r.copies {
			fmt.Fprintf(tw, "\t%d", n)
		}
		fmt.Fprintln(tw)
		if r.copies[2] > r.copies[3] && r.copies[3] > 0 {
			dupRemoved++
		}
	}
	tw.Flush()
	if dupRemoved > 0 {
		other := "vmnic3"
		if port.TeamUplink == "vmnic3" {
			other = "vmnic2"
		}
		fmt.Fprintf(w, "\n%d of %d frames arrived on both uplinks and reached PortOutput of port %d twice but VnicRx once:\n", dupRemoved, len(rows), port.PortID)
		fmt.Fprintf(w, "the copy from %s, which is not the port's team uplink (%s), was dropped by reverse teaming.\n", other, port.TeamUplink)
	}
}

// describeICMP names an ICMP echo frame briefly.
func describeICMP(f []byte) string {
	if len(f) < 42 || f[12] != 0x08 || f[13] != 0 || f[23] != 1 {
		return fmt.Sprintf("%d bytes", len(f))
	}
	kind := map[byte]string{0: "echo reply", 8: "echo request"}[f[34]]
	if kind == "" {
		kind = fmt.Sprintf("ICMP type %d", f[34])
	}
	return fmt.Sprintf("%s %s > %s seq %d", kind, net.IP(f[26:30]), net.IP(f[30:34]), int(f[40])<<8|int(f[41]))
}
