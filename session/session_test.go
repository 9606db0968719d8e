package session

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
)

// A capture of the article's ping at the default points of testvm2's port:
// every point starts within 50 ms of the others, each sees the frames the
// article shows (both uplinks one copy per echo request, PortOutput two,
// VnicRx one), the pcapng has one interface per point and tshark reads it,
// and nothing is left on the host.
func TestCaptureArticlePing(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	dial := labDialer(t, l)
	plan := articlePlan(t, l)
	plan.Duration = 10 * time.Second
	if testing.Short() {
		plan.Duration = 3 * time.Second
	}
	dir := t.TempDir()
	var out lockedBuffer
	var mu sync.Mutex
	var consumed []pktcap.Observation
	s, err := Start(context.Background(), plan, Options{
		Dial: dial, Output: &out, PointOutput: PointFiles(dir), Logger: testLogger(t),
		Consumer: func(o pktcap.Observation) {
			mu.Lock()
			consumed = append(consumed, o)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	const pings = 5
	res, err := l.Net.Ping(context.Background(), "testvm1", "testvm2", pings, 200*time.Millisecond)
	if err != nil || res.Received != pings {
		t.Fatalf("ping: %+v, %v", res, err)
	}
	r, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start skew of %d points: %v; common window %v", len(r.Points), r.Skew, r.Stop.Sub(r.Start))
	if r.Skew > 50*time.Millisecond {
		t.Errorf("points started %v apart; want within 50ms", r.Skew)
	}
	if r.Reason != "duration" {
		t.Errorf("reason %q; want duration", r.Reason)
	}
	if d := r.Stop.Sub(r.Start); d < plan.Duration-100*time.Millisecond || d > plan.Duration+2*time.Second {
		t.Errorf("common window %v; want about %v", d, plan.Duration)
	}
	want := []int{pings, pings, 2 * pings, pings}
	var got []int
	for _, p := range r.Points {
		got = append(got, int(p.Frames))
		if p.Dropped != 0 || p.Dumped != int(p.Frames) || p.PID == 0 || p.Err != nil {
			t.Errorf("%s: pid %d, dumped %d dropped %d, received %d, err %v; want the summary to match and no drops",
				p.Name, p.PID, p.Dumped, p.Dropped, p.Frames, p.Err)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("frames per point %v; want %v", got, want)
	}
	names, pkts := readPcapng(t, out.Bytes())
	wantNames := []string{"esx02/vmnic2/rx", "esx02/vmnic3/rx", "esx02/50331657/PortOutput", "esx02/50331657/VnicRx"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("pcapng interfaces %q; want %q", names, wantNames)
	}
	if c := countByPoint(pkts, 4); !slices.Equal(c, want) {
		t.Errorf("pcapng frames per interface %v; want %v", c, want)
	}
	if len(consumed) != len(pkts) {
		t.Errorf("consumer got %d observations; pcapng has %d frames", len(consumed), len(pkts))
	}
	for i, p := range r.Points {
		b, err := os.ReadFile(filepath.Join(dir, PointFileName(p.Point)))
		if err != nil {
			t.Fatal(err)
		}
		rd, err := pktcap.NewCaptureReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s pcap: %v", p.Name, err)
		}
		n := 0
		for ; ; n++ {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
		if n != want[i] {
			t.Errorf("%s pcap: %d frames; want %d", p.Name, n, want[i])
		}
	}
	checkTshark(t, out.Bytes(), wantNames, want)
	waitNoCaptures(t, l, "esx02", 5*time.Second)
	if f := leaseFiles(t, l, dial, "esx02"); len(f) != 0 {
		t.Errorf("files left on the host: %v", f)
	}
}

// checkTshark has tshark read the pcapng and count frames per interface.
func checkTshark(t *testing.T, pcapng []byte, names []string, want []int) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: pcapng not checked with tshark")
		return
	}
	f := filepath.Join(t.TempDir(), "capture.pcapng")
	if err := os.WriteFile(f, pcapng, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", f, "-T", "fields", "-e", "frame.interface_name", "-e", "icmp.type")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	got := make([]int, len(names))
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		name, icmp, _ := strings.Cut(line, "\t")
		i := slices.Index(names, name)
		if i < 0 || icmp != "8" {
			t.Errorf("tshark line %q; want an echo request on one of %q", line, names)
			continue
		}
		got[i]++
	}
	if !slices.Equal(got, want) {
		t.Errorf("tshark: frames per interface %v; want %v", got, want)
	}
}
