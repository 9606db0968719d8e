package session

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
)

// slowWriter is an output on a slow disk: every tenth write takes delay.
type slowWriter struct {
	lockedBuffer
	delay  time.Duration
	writes atomic.Int64
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if w.writes.Add(1)%10 == 0 {
		time.Sleep(w.delay)
	}
	return w.lockedBuffer.Write(p)
}

// An output that holds up delivery (every tenth write of the pcapng takes
// 40 ms, while frames come every half millisecond) is counted at the points
// whose streams it held: capturectl never drops a frame itself, so the stalls
// are how a report can say that drops at the host may be its own doing.
func TestStallsCounted(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	plan := articlePlan(t, l)
	plan.Filter = pktcap.Filter{Proto: pktcap.Some[uint8](17)}
	plan.Count = 2000 // 1,000 datagrams at the four points
	plan.Duration = 30 * time.Second
	out := &slowWriter{delay: 40 * time.Millisecond}
	s, err := Start(context.Background(), plan, Options{Dial: labDialer(t, l), Output: out, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartTraffic(lab.TrafficConfig{Kind: "udp", From: "testvm1", To: "testvm2", Rate: 2000, Size: 100}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var stalls int
	for _, p := range r.Points {
		t.Logf("%s: %d frames, %d stalls, %v stalled", p.Name, p.Frames, p.Stalls, p.Stalled)
		if p.Stalled < time.Duration(p.Stalls)*stallMin {
			t.Errorf("%s: %d stalls of %v in all; each held at least %v", p.Name, p.Stalls, p.Stalled, stallMin)
		}
		stalls += p.Stalls
	}
	if stalls == 0 {
		t.Error("no stall counted")
	}
}
