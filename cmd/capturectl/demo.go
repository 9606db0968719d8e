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
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/configs"
	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/report"
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
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file, err := writeDemoPcapng(dir, caps)
	if err != nil {
		return err
	}
	_, err = demoReport(e.stdout, dir, caps, host, port, pingRes, []string{file + " (one interface per capture point)"})
	return err
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
	point            demoPoint
	started, stopped time.Time
	sess             *ssh.Session
	pid              int
	packets          []pktcap.Packet
	stderr           bytes.Buffer
	done             chan error
	summary          pktcap.Summary
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
	dc.started = time.Now() // the header came: the point is capturing
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
	dc.stopped = time.Now()
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
		w.SetStats(i, pktcap.NgStats{Start: c.started, End: c.stopped, Dropped: uint64(c.summary.Dropped)})
	}
	if err := w.Close(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// demoReport correlates the demo's captures and writes the reports: the
// terminal summary to w, JSON and HTML next to the pcapng.
func demoReport(w io.Writer, dir string, caps []*demoCapture, host string, port lab.PortInfo, ping lab.PingResult, files []string) (*correlate.Result, error) {
	var points []correlate.Point
	for _, c := range caps {
		p, err := correlate.PointFromName(c.point.name)
		if err != nil {
			return nil, err
		}
		p.Start, p.Stop, p.Dropped = c.started, c.stopped, uint64(c.summary.Dropped)
		points = append(points, p)
	}
	mac, _ := net.ParseMAC(port.MAC)
	c, err := correlate.New(correlate.Config{Points: points, Port: correlate.Port{Name: port.VM.Name, MAC: mac, VLAN: port.VLAN,
		Promiscuous: port.Promiscuous, Policy: port.Policy, TeamUplink: port.TeamUplink}})
	if err != nil {
		return nil, err
	}
	var streams []func() (pktcap.Observation, bool, error)
	for i, dc := range caps {
		k := 0
		streams = append(streams, func() (pktcap.Observation, bool, error) {
			if k >= len(dc.packets) {
				return pktcap.Observation{}, false, nil
			}
			p := dc.packets[k]
			k++
			return pktcap.Observation{Point: i, Time: p.Time, Data: p.Data, OrigLen: p.OrigLen, VLAN: -1}, true, nil
		})
	}
	if err := correlate.MergeSorted(correlate.Streams{Next: streams}, c.Add); err != nil {
		return nil, err
	}
	res := c.Close()
	meta := report.Meta{Title: fmt.Sprintf("capturectl demo: trace of %s on %s while testvm1 pings it (%d echo requests, %d replies)",
		port.VM.Name, host, ping.Sent, ping.Received), Host: host, PortID: port.PortID}
	jsonFile, htmlFile := filepath.Join(dir, "demo.json"), filepath.Join(dir, "demo.html")
	if err := writeFileWith(jsonFile, func(w io.Writer) error { return report.JSON(w, res, meta) }); err != nil {
		return nil, err
	}
	if err := writeFileWith(htmlFile, func(w io.Writer) error { return report.HTML(w, res, meta) }); err != nil {
		return nil, err
	}
	meta.Files = append(files, jsonFile, htmlFile)
	return res, report.Text(w, res, meta)
}
