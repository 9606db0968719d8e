package session

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// holdRig is a Hold on a clock the test moves, writing into a list.
type holdRig struct {
	h       *Hold
	now     time.Time
	written []writtenFrame
	fail    error
}

type writtenFrame struct {
	point    int
	at       time.Time
	data     string
	comments []string
}

const pendingText = "not known yet"

func newHoldRig(t *testing.T, cfg HoldConfig) *holdRig {
	t.Helper()
	r := &holdRig{now: time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)}
	cfg.Now = func() time.Time { return r.now }
	if cfg.Pending == "" {
		cfg.Pending = pendingText
	}
	h, err := NewHold(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.bind(func(o pktcap.Observation, c ...string) error {
		if r.fail != nil {
			return r.fail
		}
		r.written = append(r.written, writtenFrame{o.Point, o.Time, string(o.Data), c})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.h = h
	return r
}

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func frame(point int, us int, data string) pktcap.Observation {
	return pktcap.Observation{Point: point, Time: t0.Add(time.Duration(us) * time.Microsecond), Data: []byte(data), VLAN: -1}
}

func (r *holdRig) push(t *testing.T, o pktcap.Observation) {
	t.Helper()
	if err := r.h.push(o); err != nil {
		t.Fatal(err)
	}
}

func (r *holdRig) tick(t *testing.T, d time.Duration) {
	t.Helper()
	r.now = r.now.Add(d)
	if err := r.h.tick(); err != nil {
		t.Fatal(err)
	}
}

func (r *holdRig) got() string {
	var b strings.Builder
	for _, w := range r.written {
		fmt.Fprintf(&b, "%d/%s=%s;", w.point, w.data, strings.Join(w.comments, "|"))
	}
	return b.String()
}

// A frame whose verdict comes is written with it as soon as it came, and
// its bytes are its own copy.
func TestHoldVerdictArrives(t *testing.T) {
	r := newHoldRig(t, HoldConfig{MaxWait: 2 * time.Second})
	o := frame(1, 10, "a")
	r.push(t, o)
	o.Data[0] = 'X' // the caller's buffer is reused
	r.tick(t, 50*time.Millisecond)
	if len(r.written) != 0 {
		t.Fatalf("written before its verdict or its bound: %s", r.got())
	}
	r.h.Comment(1, o.Time, "delivered")
	r.tick(t, 50*time.Millisecond)
	if got, want := r.got(), "1/a=delivered;"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	// a verdict that comes before its frame (the time order held it
	// longer than the correlator took) is waiting for it
	r.h.Comment(2, t0.Add(20*time.Microsecond), "filtered")
	r.push(t, frame(2, 20, "b"))
	if got, want := r.got(), "1/a=delivered;2/b=filtered;"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	if st := r.h.Stats(); st.Commented != 2 || st.Pending != 0 || st.Late != 0 || r.h.Held() != 0 {
		t.Errorf("stats %+v, %d held; want 2 commented, nothing pending or held", st, r.h.Held())
	}
}

// The bound: a frame without a verdict goes out after MaxWait with the
// pending comment, never later; one judged behind it waits for it, and
// frames keep their order. A verdict that comes afterwards is counted.
func TestHoldBoundReached(t *testing.T) {
	r := newHoldRig(t, HoldConfig{MaxWait: 2 * time.Second})
	r.push(t, frame(0, 1, "a"))
	r.tick(t, time.Second)
	r.push(t, frame(3, 2, "b"))
	r.h.Comment(3, t0.Add(2*time.Microsecond), "delivered")
	r.tick(t, 999*time.Millisecond)
	if len(r.written) != 0 {
		t.Fatalf("written before the bound: %s", r.got())
	}
	r.tick(t, time.Millisecond) // a's wait is 2 s
	if got, want := r.got(), "0/a="+pendingText+";3/b=delivered;"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	r.h.Comment(0, t0.Add(time.Microsecond), "delivered")
	st := r.h.Stats()
	if st.Commented != 1 || st.Pending != 1 || st.Waited != 1 || st.Full != 0 || st.Late != 1 {
		t.Errorf("stats %+v; want 1 commented, 1 pending after its wait, 1 late verdict", st)
	}
}

// The memory bound: past MaxBytes held, the earliest frame goes out at
// once, its verdict not known.
func TestHoldMemoryBound(t *testing.T) {
	r := newHoldRig(t, HoldConfig{MaxWait: time.Hour, MaxBytes: chunkSize})
	big := strings.Repeat("x", chunkSize/2+1)
	r.push(t, frame(0, 1, big))
	if len(r.written) != 0 {
		t.Fatalf("one chunk held is within the bound; written %d", len(r.written))
	}
	r.push(t, frame(0, 2, big)) // a second chunk: past the bound
	if len(r.written) != 1 || r.written[0].at != t0.Add(time.Microsecond) || r.written[0].comments[0] != pendingText {
		t.Fatalf("written %d frames; want the earliest, pending", len(r.written))
	}
	if st := r.h.Stats(); st.Full != 1 || st.Pending != 1 || st.Waited != 0 {
		t.Errorf("stats %+v; want 1 pending for memory", st)
	}
}

// The end of the stream writes everything held, each with its verdict
// when known, in order.
func TestHoldStreamEndFlushes(t *testing.T) {
	r := newHoldRig(t, HoldConfig{})
	if r.h.MaxWait() != DefaultHoldWait {
		t.Errorf("default wait %v; want %v", r.h.MaxWait(), DefaultHoldWait)
	}
	for i := range 5 {
		r.push(t, frame(i%2, 10*i, string(rune('a'+i))))
	}
	r.h.Comment(1, t0.Add(10*time.Microsecond), "v1")
	r.h.Comment(0, t0.Add(40*time.Microsecond), "v4")
	r.tick(t, time.Second)
	if len(r.written) != 0 {
		t.Fatalf("written before its bound behind a frame without a verdict: %s", r.got())
	}
	if err := r.h.flush(); err != nil {
		t.Fatal(err)
	}
	want := "0/a=" + pendingText + ";1/b=v1;0/c=" + pendingText + ";1/d=" + pendingText + ";0/e=v4;"
	if got := r.got(); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if st := r.h.Stats(); st.Commented != 2 || st.Pending != 3 || st.Waited != 0 || st.Full != 0 || st.MaxHeld != 5 || r.h.Held() != 0 {
		t.Errorf("stats %+v, %d held; want 2 commented, 3 pending at the end, 5 held at most, none now", st, r.h.Held())
	}
}

// Two frames of one point at the same time share a verdict; a write error
// stops the release and is returned; bad bounds and a second session are
// refused.
func TestHoldEdges(t *testing.T) {
	r := newHoldRig(t, HoldConfig{})
	r.push(t, frame(0, 5, "a"))
	r.push(t, frame(0, 5, "b"))
	r.h.Comment(0, t0.Add(5*time.Microsecond), "v")
	r.tick(t, 0)
	if got, want := r.got(), "0/a=v;0/b=v;"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	r.fail = errors.New("broken pipe")
	r.push(t, frame(0, 6, "c"))
	r.h.Comment(0, t0.Add(6*time.Microsecond), "v")
	if err := r.h.tick(); !errors.Is(err, r.fail) {
		t.Errorf("tick: %v; want the write's error", err)
	}
	if err := r.h.bind(func(pktcap.Observation, ...string) error { return nil }); err == nil {
		t.Error("a Hold bound to a second session")
	}
	for _, cfg := range []HoldConfig{{MaxWait: -time.Second}, {MaxBytes: -1}} {
		if _, err := NewHold(cfg); err == nil {
			t.Errorf("NewHold(%+v): no error", cfg)
		}
	}
	// no pending comment: the frame goes out without one
	r2 := newHoldRig(t, HoldConfig{})
	r2.h.cfg.Pending = ""
	r2.push(t, frame(0, 1, "a"))
	if err := r2.h.flush(); err != nil || len(r2.written) != 1 || len(r2.written[0].comments) != 0 {
		t.Errorf("flush: %v, written %s; want the frame without a comment", err, r2.got())
	}
}

// BenchmarkHold is the Hold's cost per frame in a steady flow: each frame
// comes, its comment comes a few frames later, and it goes out.
func BenchmarkHold(b *testing.B) {
	h, err := NewHold(HoldConfig{Pending: pendingText})
	if err != nil {
		b.Fatal(err)
	}
	written := 0
	if err := h.bind(func(pktcap.Observation, ...string) error { written++; return nil }); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 100)
	const lag = 64
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(i) * time.Microsecond)
		if err := h.push(pktcap.Observation{Point: i % 4, Time: at, Data: data, VLAN: -1}); err != nil {
			b.Fatal(err)
		}
		if i >= lag {
			j := i - lag
			h.Comment(j%4, t0.Add(time.Duration(j)*time.Microsecond), "capturectl: delivered: arrived on vmnic2, delivered")
		}
	}
	if err := h.flush(); err != nil {
		b.Fatal(err)
	}
	if st := h.Stats(); written == 0 || st.Commented == 0 {
		b.Fatalf("written %d, stats %+v", written, st)
	}
}
