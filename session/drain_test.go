package session

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
)

// A point whose stream lags more than the stop can wait for (a slow
// management link, the SSH window full of frames) may lose at the signal
// what pktcap-uw still held, uncounted. Its live window must then end at
// the latest frame it delivered, not at the stop: otherwise the frames it
// lost would count as frames it was live for and did not see.
func TestStopUndrainedPointEndsAtItsLastFrame(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	plan := articlePlan(t, l)
	plan.Points = plan.Points[:1] // esx02/vmnic2/rx
	plan.Filter = pktcap.Filter{Proto: pktcap.Some[uint8](17)}
	plan.Duration = time.Minute
	if err := l.SetManagementLink("esx02", lab.LinkConfig{Bandwidth: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	var last atomic.Int64 // host time of the latest frame delivered
	s, err := Start(context.Background(), plan, Options{
		Dial: labDialer(t, l), Output: io.Discard, Clocks: true, Logger: testLogger(t),
		Consumer: func(o pktcap.Observation) { last.Store(o.Time.UnixNano()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// 2.8 MB/s of frames into a 1 MiB/s link: the stream falls behind.
	if err := l.StartTraffic(lab.TrafficConfig{Kind: "udp", From: "testvm1", To: "testvm2", Rate: 2000, Size: 1400}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		lag := l.Net.HostTime("esx02", time.Now()).Sub(time.Unix(0, last.Load()))
		if last.Load() != 0 && lag > 2*drainWait {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream never fell %v behind (lag %v)", 2*drainWait, lag)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopAt := time.Now()
	s.Stop()
	r, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	p := r.Points[0]
	c := r.Clocks["esx02"]
	if !c.Known() {
		t.Fatalf("esx02's clock not read: %+v", r.Clocks)
	}
	lastFrame := time.Unix(0, last.Load())
	t.Logf("%s: %d frames, stop moved from %v to %v; last frame %v (host), undrained %v",
		p.Name, p.Frames, stopAt.Format(time.StampMicro), p.Stop.Format(time.StampMicro), lastFrame.Format(time.StampMicro), p.Undrained)
	if !p.Undrained {
		t.Errorf("%s: not marked undrained though it lagged more than %v at the stop", p.Name, drainWait)
	}
	if end := c.Earliest(p.Stop); end.After(lastFrame) {
		t.Errorf("%s: live until %v on the host's clock, after the last frame it delivered (%v): what it lost at the signal would count as not seen",
			p.Name, end.Format(time.StampMicro), lastFrame.Format(time.StampMicro))
	}
}
