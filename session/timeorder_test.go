package session

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
)

// A capture of 2 kfps at the article's four points, whose streams reach
// capturectl each at its own pace: the pcapng is in time order across the
// points (capinfos: "Strict time order: True"), none came too late.
func TestCaptureTimeOrder(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	plan := articlePlan(t, l)
	plan.Filter = pktcap.Filter{}
	plan.Duration = 1500 * time.Millisecond
	path := filepath.Join(t.TempDir(), "trace.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Start(context.Background(), plan, Options{Dial: labDialer(t, l), Output: f, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartTraffic(lab.TrafficConfig{Kind: "udp", From: "testvm1", To: "testvm2", Rate: 2000, Size: 100}); err != nil {
		t.Fatal(err)
	}
	if err := l.StartTraffic(lab.TrafficConfig{Kind: "ping", From: "testvm1", To: "testvm2", Interval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if r.OutOfOrder != 0 {
		t.Errorf("%d frames written out of order", r.OutOfOrder)
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sc, err := pktcap.NewNgScanner(in)
	if err != nil {
		t.Fatal(err)
	}
	var n, back int
	var last int64
	perIface := map[int]int{}
	for {
		iface, ns, _, _, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ns < last {
			back++
		}
		last = ns
		n++
		perIface[iface]++
	}
	t.Logf("%d frames, %d going back in time; per interface %v", n, back, perIface)
	if n < 2000 || len(perIface) != 4 {
		t.Fatalf("%d frames on %d interfaces; want a flood at four points", n, len(perIface))
	}
	if back != 0 {
		t.Errorf("%d frames earlier than the one before", back)
	}
	capinfos, err := exec.LookPath("capinfos")
	if err != nil {
		testenv.Missing(t, "capinfos (Debian package wireshark-common) not installed")
	}
	out, err := exec.Command(capinfos, "-o", path).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Strict time order:   True") {
		t.Errorf("capinfos -o:\n%s", out)
	}
}
