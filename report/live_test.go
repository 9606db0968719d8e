package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func liveSample(el time.Duration, frames uint64) LiveStatus {
	return LiveStatus{Elapsed: el, Duration: 30 * time.Second, Points: []LivePoint{
		{"esx02/vmnic2/rx", frames, -1}, {"esx02/50331657/VnicRx", frames / 2, -1}},
		Verdicts: []LiveCount{{"delivered", int(frames / 2)}, {"filtered by reverse teaming", 0}}}
}

// On a terminal the block is redrawn in place and removed at the end.
func TestLiveViewTerminal(t *testing.T) {
	var b bytes.Buffer
	v := NewLiveView(&b, true, true)
	v.Draw(liveSample(2*time.Second, 10))
	first := b.String()
	want := "\033[?25l\r\033[K\033[1m2s of 30s (28s left) — 15 frames at 2 points\033[0m\n" +
		"\r\033[K  esx02/vmnic2/rx               10 frames  drops at the end\n" +
		"\r\033[K  esx02/50331657/VnicRx          5 frames  drops at the end\n" +
		"\r\033[K\033[1m5 delivered\033[0m\n"
	if first != want {
		t.Errorf("first draw:\n%q\nwant\n%q", first, want)
	}
	b.Reset()
	s := liveSample(3*time.Second, 20)
	s.Verdicts = nil // shorter block: the old last line is cleared
	v.Draw(s)
	if got := b.String(); !strings.HasPrefix(got, "\r\033[4A") || !strings.Contains(got, "20 frames") || !strings.HasSuffix(got, "\r\033[K\n\033[1A") {
		t.Errorf("redraw: %q", got)
	}
	b.Reset()
	v.End()
	if b.String() != "\r\033[3A\033[J\033[?25h" {
		t.Errorf("end: %q", b.String())
	}
	b.Reset()
	v.End() // twice: nothing
	if b.Len() != 0 {
		t.Errorf("second end: %q", b.String())
	}
}

// NO_COLOR (color false): the same block without attributes.
func TestLiveViewNoColor(t *testing.T) {
	var b bytes.Buffer
	NewLiveView(&b, true, false).Draw(liveSample(time.Second, 4))
	if strings.Contains(b.String(), "\033[1m") || !strings.Contains(b.String(), "1s of 30s") {
		t.Errorf("%q", b.String())
	}
}

// Elsewhere: a plain line now and then, never cursor movement.
func TestLiveViewPlain(t *testing.T) {
	var b bytes.Buffer
	v := NewLiveView(&b, false, true)
	for s := 0; s <= 25; s++ {
		v.Draw(liveSample(time.Duration(s)*time.Second, uint64(s)))
	}
	v.End()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 || strings.Contains(b.String(), "\033") {
		t.Fatalf("plain view:\n%s", b.String())
	}
	if lines[1] != "capturectl: 10s of 30s (20s left): esx02/vmnic2/rx 10, esx02/50331657/VnicRx 5; 5 delivered" {
		t.Errorf("line: %q", lines[1])
	}
	c := LiveStatus{Elapsed: 5 * time.Second, Count: 100, Points: []LivePoint{{"p", 40, 3}}}
	if got := plainLine(c); got != "capturectl: 5s, 40 of 100 frames: p 40" {
		t.Errorf("count: %q", got)
	}
	if got := blockLines(c)[1]; !strings.HasSuffix(got, "3 dropped") {
		t.Errorf("drops: %q", got)
	}
}

// Finish leaves the final state on the screen with the cursor shown; off
// a terminal it writes the last line even inside the Every interval.
func TestLiveViewFinish(t *testing.T) {
	var b bytes.Buffer
	v := NewLiveView(&b, true, false)
	v.Draw(liveSample(time.Second, 4))
	b.Reset()
	v.Finish(liveSample(2*time.Second, 8))
	got := b.String()
	if !strings.HasPrefix(got, "\r\033[4A") || !strings.Contains(got, "2s of 30s") || !strings.HasSuffix(got, "\033[?25h") {
		t.Errorf("finish: %q", got)
	}
	b.Reset()
	v.End()
	if b.Len() != 0 {
		t.Errorf("end after finish: %q", b.String())
	}
	b.Reset()
	p := NewLiveView(&b, false, true)
	p.Draw(liveSample(time.Second, 2))
	p.Finish(liveSample(2*time.Second, 4))
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "2s of 30s") || strings.Contains(b.String(), "\033") {
		t.Errorf("plain finish:\n%s", b.String())
	}
}
