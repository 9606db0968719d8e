package session

import (
	"context"
	"testing"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

// slowWriter is an output on a slow disk: every write takes delay.
type slowWriter struct {
	lockedBuffer
	delay time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.lockedBuffer.Write(p)
}

// An output that holds up delivery is counted at the points whose
// streams it held: capturectl never drops a frame itself, so the stalls
// are how a report can say that drops at the host may be its own doing.
func TestStallsCounted(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	plan := articlePlan(t, l)
	plan.Count = 8 // 2 pings give 10 frames at the four points
	plan.Duration = 30 * time.Second
	out := &slowWriter{delay: 40 * time.Millisecond}
	s, err := Start(context.Background(), plan, Options{Dial: labDialer(t, l), Output: out, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := l.Net.Ping(context.Background(), "testvm1", "testvm2", 2, 100*time.Millisecond); err != nil || res.Received != 2 {
		t.Fatalf("ping: %+v, %v", res, err)
	}
	r, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var stalls int
	for _, p := range r.Points {
		t.Logf("%s: %d frames, %d stalls, %v stalled", p.Name, p.Frames, p.Stalls, p.Stalled)
		if p.Frames > 0 && p.Stalls == 0 {
			t.Errorf("%s: %d frames through a 40 ms output and no stall", p.Name, p.Frames)
		}
		if p.Stalls > 0 && p.Stalled < time.Duration(p.Stalls)*40*time.Millisecond {
			t.Errorf("%s: %d stalls of %v in all; each held at least 40ms", p.Name, p.Stalls, p.Stalled)
		}
		stalls += p.Stalls
	}
	if stalls == 0 {
		t.Error("no stall counted")
	}
}
