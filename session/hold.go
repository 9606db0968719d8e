package session

import (
	"fmt"
	"sync"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Comments on a live pcapng (capturectl extcap writes each frame with its
// verdict). A frame's comment may be known only after the time order
// (reorder.go) would write it: the verdict of a frame comes once the
// correlator has seen what follows it. A Hold sits between the time order
// and the pcapng Output and holds each frame until its comment is known
// (Comment), then writes it with the comment. The wait is bounded: a frame
// whose comment is not known after MaxWait (wall time, from when the time
// order let it go), or once MaxBytes of frames are held, is written with
// the Pending comment — never a guessed one — and counted (HoldStats).
// Frames go out in the order they came: one whose comment is known waits
// behind an earlier one still waiting, at most until that one's bound, so
// the stream is never held longer than MaxWait past the time order. At the
// end of the capture the session gives the caller a last chance to comment
// (Options.Stopped), then writes every frame still held.
//
// The Hold knows nothing about verdicts: a comment is text for the frame
// of a point at a time (the host's timestamp, as written).

// Bounds of a Hold when its HoldConfig leaves them zero.
const (
	DefaultHoldWait  = 2 * time.Second
	DefaultHoldBytes = 16 << 20
)

// HoldConfig configures a Hold.
type HoldConfig struct {
	// MaxWait bounds how long a frame waits for its comment (default
	// DefaultHoldWait).
	MaxWait time.Duration
	// MaxBytes bounds the frame bytes held (default DefaultHoldBytes);
	// past it the earliest frame goes out at once.
	MaxBytes int
	// Pending is the comment of a frame written before its comment was
	// known; "" writes it without one.
	Pending string
	// Now is the clock frames wait by (default time.Now; tests).
	Now func() time.Time
}

// HoldStats counts what a Hold wrote.
type HoldStats struct {
	// Commented frames were written with their comment.
	Commented uint64
	// Pending frames were written before their comment was known (with
	// HoldConfig.Pending): Waited of them after MaxWait, Full of them
	// because MaxBytes were held, the rest at the end of the capture.
	Pending, Waited, Full uint64
	// Late counts comments that came after their frame was written.
	Late uint64
	// MaxHeld is the most frames held at once.
	MaxHeld int
}

// Hold holds frames until their comment is known (see above). Its
// methods are safe for concurrent use; Comment never blocks on the
// output.
type Hold struct {
	cfg HoldConfig

	mu       sync.Mutex
	write    func(pktcap.Observation, ...string) error // the pcapng's, once the session started
	q        []holdFrame
	head     int
	arena    arena
	comments map[holdKey]string // known; the frame held or not come yet
	queued   map[holdKey]int32  // frames held, by key
	lastOut  map[int]int64      // each point's latest frame written (ns)
	stats    HoldStats
	bound    bool
}

type holdKey struct {
	point int
	ns    int64
}

type holdFrame struct {
	o          pktcap.Observation // Data: nil, the bytes are in the arena
	chunk, off uint32
	n          uint32
	in         time.Time // when the time order let it go
}

// NewHold returns a Hold for Options.Hold. A negative MaxWait or
// MaxBytes is an error.
func NewHold(cfg HoldConfig) (*Hold, error) {
	if cfg.MaxWait < 0 || cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("session: hold: max wait %v, max bytes %d: want 0 (the default) or more", cfg.MaxWait, cfg.MaxBytes)
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultHoldWait
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultHoldBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Hold{cfg: cfg, comments: map[holdKey]string{}, queued: map[holdKey]int32{}, lastOut: map[int]int64{}}, nil
}

// MaxWait is the Hold's bound on a frame's wait.
func (h *Hold) MaxWait() time.Duration { return h.cfg.MaxWait }

// bind sets where frames go (a session's pcapng). A Hold serves one
// session.
func (h *Hold) bind(write func(pktcap.Observation, ...string) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bound {
		return fmt.Errorf("session: hold: already used by another session")
	}
	h.write, h.bound = write, true
	return nil
}

// Comment gives the comment of point's frame at t (its timestamp as the
// host gave it). A frame held is written with it; a frame not come yet
// gets it when it comes; a frame written already keeps what it was
// written with (counted as Late).
func (h *Hold) Comment(point int, t time.Time, text string) {
	k := holdKey{point, t.UnixNano()}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.queued[k] == 0 {
		if last, ok := h.lastOut[point]; ok && k.ns <= last {
			h.stats.Late++
			return
		}
		if len(h.comments) >= len(h.queued)+maxEarlyComments {
			// comments for frames that never came (a frame the time
			// order wrote late, behind a later one): forget the oldest
			h.pruneLocked()
			if len(h.comments) >= len(h.queued)+maxEarlyComments {
				h.stats.Late++
				return
			}
		}
	}
	h.comments[k] = text
}

// maxEarlyComments bounds the comments kept for frames not come yet.
const maxEarlyComments = 1 << 16

// pruneLocked forgets the comments whose frame was written already.
func (h *Hold) pruneLocked() {
	for k := range h.comments {
		if h.queued[k] > 0 {
			continue
		}
		if last, ok := h.lastOut[k.point]; ok && k.ns <= last {
			delete(h.comments, k)
			h.stats.Late++
		}
	}
}

// push takes a frame from the time order (its data is copied) and writes
// what may go.
func (h *Hold) push(o pktcap.Observation) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := holdFrame{o: o, n: uint32(len(o.Data)), in: h.cfg.Now()}
	f.o.Data = nil
	f.chunk, f.off = h.arena.put(o.Data)
	h.q = append(h.q, f)
	h.queued[holdKey{o.Point, o.Time.UnixNano()}]++
	h.stats.MaxHeld = max(h.stats.MaxHeld, len(h.q)-h.head)
	return h.releaseLocked(false)
}

// tick writes the frames whose comment came or whose wait is over.
func (h *Hold) tick() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.releaseLocked(false)
}

// flush writes every frame held (the end of the capture).
func (h *Hold) flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.releaseLocked(true)
}

// Stats says what the Hold wrote so far.
func (h *Hold) Stats() HoldStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// Held is the number of frames held now.
func (h *Hold) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.q) - h.head
}

func (h *Hold) releaseLocked(all bool) error {
	now := h.cfg.Now()
	for h.head < len(h.q) {
		f := &h.q[h.head]
		k := holdKey{f.o.Point, f.o.Time.UnixNano()}
		text, known := h.comments[k]
		switch {
		case known:
			h.stats.Commented++
		case all:
			h.stats.Pending++
		case now.Sub(f.in) >= h.cfg.MaxWait:
			h.stats.Pending++
			h.stats.Waited++
		case h.arena.inUse > h.cfg.MaxBytes:
			h.stats.Pending++
			h.stats.Full++
		default:
			h.compactLocked()
			return nil
		}
		if !known {
			text = h.cfg.Pending
		}
		o := f.o
		o.Data = h.arena.bytes(f.chunk, f.off, f.n)
		h.head++
		if n := h.queued[k] - 1; n > 0 {
			h.queued[k] = n
		} else {
			delete(h.queued, k)
			delete(h.comments, k)
		}
		h.lastOut[k.point] = max(h.lastOut[k.point], k.ns)
		var err error
		if text != "" {
			err = h.write(o, text)
		} else {
			err = h.write(o)
		}
		h.arena.done(f.chunk)
		if err != nil {
			h.compactLocked()
			return err
		}
	}
	h.q, h.head = h.q[:0], 0
	return nil
}

// compactLocked moves what waits to the front of a queue that never
// empties.
func (h *Hold) compactLocked() {
	if h.head >= 1024 && 2*h.head >= len(h.q) {
		n := copy(h.q, h.q[h.head:])
		h.q, h.head = h.q[:n], 0
	}
}
