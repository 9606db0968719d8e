package report

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// LiveStatus is what a running capture or trace looks like at one moment.
type LiveStatus struct {
	// Elapsed is the time since every point went live; Duration the
	// run's length (0: until stopped or Count).
	Elapsed, Duration time.Duration
	// Count is the frame count the run stops at (0: none).
	Count  uint64
	Points []LivePoint
	// Verdicts are the frames judged so far, by verdict, in report order
	// (trace only; nil for a capture).
	Verdicts []LiveCount
}

// LivePoint is one capture point's progress.
type LivePoint struct {
	Name   string
	Frames uint64
	// Dropped is pktcap-uw's drop count, which it reports when its
	// capture ends; -1 until then.
	Dropped int
}

// LiveCount is a number of frames with one verdict.
type LiveCount struct {
	Verdict string
	N       int
}

// LiveView draws LiveStatus on a writer. On a terminal it keeps a block of
// lines (a header, a line per point, the verdicts) redrawn in place, with
// bold headings unless colour is off; elsewhere (a log, a pipe) it writes
// one plain line every Every, so that a long run still shows it is alive
// without flooding the log. Safe for one drawing goroutine and End.
type LiveView struct {
	w     io.Writer
	tty   bool
	color bool
	// Every is the interval of plain lines (default 10s).
	Every time.Duration

	mu        sync.Mutex
	lines     int // lines of the block on screen
	lastPlain time.Duration
	plain     bool // a plain line was written
	hidden    bool // the cursor is hidden (shown again by End and Finish)
}

// The cursor's visibility (DECTCEM).
const (
	hideCursor = "\033[?25l"
	showCursor = "\033[?25h"
)

// NewLiveView returns a view on w; tty says w is a terminal, color that
// ANSI attributes may be used (NO_COLOR unset, TERM not dumb).
func NewLiveView(w io.Writer, tty, color bool) *LiveView {
	return &LiveView{w: w, tty: tty, color: color && tty, Every: 10 * time.Second}
}

// Draw shows s.
func (v *LiveView) Draw(s LiveStatus) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.tty {
		if v.plain && s.Elapsed-v.lastPlain < v.Every {
			return
		}
		v.plain, v.lastPlain = true, s.Elapsed
		io.WriteString(v.w, plainLine(s)+"\n")
		return
	}
	var b strings.Builder
	if v.lines > 0 {
		fmt.Fprintf(&b, "\r\033[%dA", v.lines) // back to the block's first line
	} else if !v.hidden {
		b.WriteString(hideCursor) // no cursor flickering through the block
		v.hidden = true
	}
	lines := blockLines(s)
	for _, l := range lines {
		if v.color && strings.HasPrefix(l, "\x00") {
			l = "\033[1m" + l[1:] + "\033[0m"
		} else {
			l = strings.TrimPrefix(l, "\x00")
		}
		b.WriteString("\r\033[K" + l + "\n")
	}
	// a shorter block than last time: clear what is left below
	for k := len(lines); k < v.lines; k++ {
		b.WriteString("\r\033[K\n")
	}
	if extra := v.lines - len(lines); extra > 0 {
		fmt.Fprintf(&b, "\033[%dA", extra)
	}
	v.lines = len(lines)
	io.WriteString(v.w, b.String())
}

// End removes the block from the screen (a terminal) and shows the cursor
// again, so that the final summary starts where the view was; elsewhere it
// writes nothing.
func (v *LiveView) End() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.tty {
		return
	}
	var b strings.Builder
	if v.lines > 0 {
		fmt.Fprintf(&b, "\r\033[%dA\033[J", v.lines)
	}
	if v.hidden {
		b.WriteString(showCursor)
	}
	v.lines, v.hidden = 0, false
	io.WriteString(v.w, b.String())
}

// Finish shows the final state s and ends the view: on a terminal the
// block is drawn a last time and left on the screen, the cursor shown
// below it; elsewhere a last plain line is written whatever Every says.
// Later Draws and Ends write nothing more than a new view would.
func (v *LiveView) Finish(s LiveStatus) {
	if !v.tty {
		v.mu.Lock()
		v.plain, v.lastPlain = true, s.Elapsed
		io.WriteString(v.w, plainLine(s)+"\n")
		v.mu.Unlock()
		return
	}
	v.Draw(s)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.hidden {
		io.WriteString(v.w, showCursor)
	}
	v.lines, v.hidden = 0, false
}

// progress is "12s of 30s", "12s, 1234 of 5000 frames" or "12s".
func progress(s LiveStatus) string {
	el := s.Elapsed.Truncate(time.Second)
	p := el.String()
	if s.Duration > 0 {
		rem := max(s.Duration-s.Elapsed, 0).Round(time.Second)
		p = fmt.Sprintf("%s of %s (%s left)", el, s.Duration, rem)
	}
	if s.Count > 0 {
		p += fmt.Sprintf(", %d of %d frames", total(s), s.Count)
	}
	return p
}

func total(s LiveStatus) uint64 {
	var n uint64
	for _, p := range s.Points {
		n += p.Frames
	}
	return n
}

func dropText(d int) string {
	if d < 0 {
		return "drops at the end"
	}
	return fmt.Sprintf("%d dropped", d)
}

// blockLines are the terminal block's lines; a leading NUL marks a
// heading.
func blockLines(s LiveStatus) []string {
	lines := []string{"\x00" + progress(s) + fmt.Sprintf(" — %d frames at %d points", total(s), len(s.Points))}
	w := 0
	for _, p := range s.Points {
		w = max(w, len(p.Name))
	}
	for _, p := range s.Points {
		lines = append(lines, fmt.Sprintf("  %-*s %10d frames  %s", w, p.Name, p.Frames, dropText(p.Dropped)))
	}
	if s.Verdicts != nil {
		lines = append(lines, "\x00"+verdictText(s.Verdicts))
	}
	return lines
}

func verdictText(vs []LiveCount) string {
	var parts []string
	for _, c := range vs {
		if c.N > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.N, c.Verdict))
		}
	}
	if len(parts) == 0 {
		return "no frame judged yet"
	}
	return strings.Join(parts, ", ")
}

// plainLine is the whole status on one line.
func plainLine(s LiveStatus) string {
	var parts []string
	for _, p := range s.Points {
		parts = append(parts, fmt.Sprintf("%s %d", p.Name, p.Frames))
	}
	l := fmt.Sprintf("capturectl: %s: %s", progress(s), strings.Join(parts, ", "))
	if s.Verdicts != nil {
		l += "; " + verdictText(s.Verdicts)
	}
	return l
}

// Run draws status() on v once a second from now until stop, which
// shows the final state (Finish) and returns once nothing more is drawn.
func (v *LiveView) Run(status func() LiveStatus) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			v.Draw(status())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return sync.OnceFunc(func() { close(done); wg.Wait(); v.Finish(status()) })
}
