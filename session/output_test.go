package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// A regular output is written beside its target: the earlier file stays
// as it was until Commit, and a Close without Commit leaves it (and no
// temporary file) behind.
func TestOutputFileCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.pcapng")
	os.WriteFile(path, []byte("earlier run"), 0o644)

	o, err := OpenOutput(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("failed run"))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "earlier run" {
		t.Errorf("after a run that never committed: %q; want the earlier file", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left: %v; want only c.pcapng", ents)
	}

	o, err = OpenOutput(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("new "))
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("run")) // after the rename: the same file
	o.Close()
	if got, _ := os.ReadFile(path); string(got) != "new run" {
		t.Errorf("after Commit: %q; want %q", got, "new run")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left: %v; want only c.pcapng", ents)
	}
}

// A FIFO is opened write-only and directly; waiting for its reader ends
// when ctx does; with a reader that goes away, WatchReader says so
// without a write.
func TestOutputFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "f")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := OpenOutput(ctx, fifo); errc <- err }()
	cancel()
	if err := <-errc; err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("open without a reader, cancelled: %v; want context.Canceled", err)
	}

	rc := make(chan *os.File, 1)
	go func() { r, _ := os.Open(fifo); rc <- r }()
	o, err := OpenOutput(context.Background(), fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	r := <-rc
	if !o.Direct() || pipeOf(o) == nil {
		t.Errorf("FIFO output: direct %v, pipe %v; want both", o.Direct(), pipeOf(o))
	}
	gone := make(chan struct{})
	stop := WatchReader(o, func() { close(gone) })
	defer stop()
	r.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the FIFO's reader went away; WatchReader did not say so within 5s")
	}
	g := newGuard(o, nil)
	defer g.close()
	if _, err := g.Write([]byte("x")); !errors.Is(err, ErrReaderGone) {
		t.Errorf("write without a reader: %v; want ErrReaderGone", err)
	}
}

// blockedWriter never takes a write until released.
type blockedWriter struct{ release chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// A reader that stops reading blocks writes while the capture runs, but
// once it stops a write is abandoned after outputStall, and every later
// write fails at once.
func TestGuardStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stopping := make(chan struct{})
		bw := blockedWriter{make(chan struct{})}
		g := newGuard(bw, stopping)
		done := make(chan error, 1)
		go func() { _, err := g.Write([]byte("frame")); done <- err }()
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("write returned %v before the stop; want it to wait for the reader", err)
		default:
		}
		close(stopping)
		start := time.Now()
		err := <-done
		if !errors.Is(err, ErrOutputStalled) || time.Since(start) != outputStall {
			t.Errorf("after the stop: %v after %v; want ErrOutputStalled after %v", err, time.Since(start), outputStall)
		}
		if _, err := g.Write([]byte("more")); !errors.Is(err, ErrOutputStalled) {
			t.Errorf("next write: %v; want ErrOutputStalled", err)
		}
		g.close()
		close(bw.release) // the abandoned write ends; the loop with it
		g.wg.Wait()
	})
}

// A reader that reads, however slowly, is never abandoned; the bytes
// arrive as written, in order.
func TestGuardSlowReader(t *testing.T) {
	var buf bytes.Buffer
	stopping := make(chan struct{})
	close(stopping)
	g := newGuard(&buf, stopping)
	for _, s := range []string{"a", "b", "c"} {
		if _, err := g.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	g.close()
	if buf.String() != "abc" {
		t.Errorf("got %q; want abc", buf.String())
	}
	epipe := newGuard(writerFunc(func([]byte) (int, error) { return 0, syscall.EPIPE }), nil)
	defer epipe.close()
	if _, err := epipe.Write([]byte("x")); !errors.Is(err, ErrReaderGone) || !errors.Is(err, syscall.EPIPE) {
		t.Errorf("EPIPE: %v; want ErrReaderGone wrapping EPIPE", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var _ io.Writer = writerFunc(nil)
