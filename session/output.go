package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Output files. A capture's output must not be destroyed by a run that
// fails, must not mix two runs, and a reader that goes away or stops
// reading must not keep the capture from stopping:
//
//   - a regular file (or a new name) is written to a temporary file beside
//     it and renamed into place once every point streams (Commit): a run
//     that fails before that leaves an earlier file as it was;
//   - a FIFO, a device or stdout is written directly;
//   - writes pass through a guard (see Options.Output): once the capture
//     is stopping, a write the reader has not taken within outputStall is
//     abandoned, and a reader that went away (EPIPE, or a pipe's read end
//     closed while nothing was written) ends the capture with
//     ErrReaderGone.

// ErrReaderGone: the output's reader went away (a closed pipe or FIFO:
// `| head`, a tshark that exited). The capture stops and cleans up the
// hosts as on Ctrl-C; the shell's convention for it is exit 141 (SIGPIPE).
var ErrReaderGone = errors.New("the output's reader went away (broken pipe)")

// ErrOutputStalled: the capture stopped and the output's reader took no
// data for outputStall (a FIFO nobody reads): the rest is not written.
var ErrOutputStalled = errors.New("the output's reader stopped reading; the output is cut where it stalled")

// outputStall is how long a write may stay blocked once the capture is
// stopping.
const outputStall = 2 * time.Second

// OutputFile is a capture output at a path (see OpenOutput).
type OutputFile struct {
	f         *os.File
	path, tmp string  // tmp: "" when written directly
	dir       *RunDir // Commit commits it (RunDir.Create)
	mu        sync.Mutex
	committed bool
	closed    bool
}

// OpenOutput opens path for a capture's output. A FIFO, a device or
// another non-regular file is opened for writing directly (a FIFO waits
// for its reader; cancelling ctx ends the wait). A regular file or a new
// name is written to a temporary file beside it, renamed over path by
// Commit (the session commits once every point streams) and removed by
// Close when never committed, so that a run that fails to start leaves an
// earlier file as it was.
func OpenOutput(ctx context.Context, path string) (*OutputFile, error) {
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, fmt.Errorf("session: output %s is a directory", path)
		}
		f, err := openWriteOnly(ctx, path, fi.Mode()&os.ModeNamedPipe != 0)
		if err != nil {
			return nil, fmt.Errorf("session: output %s: %w", path, err)
		}
		return &OutputFile{f: f, path: path}, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("session: output %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("session: output %s: %w", path, err)
	}
	return &OutputFile{f: tmp, path: path, tmp: tmp.Name()}, nil
}

// openWriteOnly opens a non-regular file write-only (never read-write: a
// FIFO opened so has a reader, us, and never reports that its real reader
// went away). Opening a FIFO waits for a reader; ctx ends the wait by
// opening it for reading ourselves, which lets the open return.
func openWriteOnly(ctx context.Context, path string, fifo bool) (*os.File, error) {
	if !fifo {
		return os.OpenFile(path, os.O_WRONLY, 0)
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
	}
	if r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
		defer r.Close()
	}
	if o := <-ch; o.f != nil {
		o.f.Close()
	}
	return nil, fmt.Errorf("waiting for a reader of the FIFO: %w", context.Cause(ctx))
}

// Write writes to the file.
func (o *OutputFile) Write(p []byte) (int, error) { return o.f.Write(p) }

// File is the open file.
func (o *OutputFile) File() *os.File { return o.f }

// Path is the path the output is for.
func (o *OutputFile) Path() string { return o.path }

// Direct reports whether the output is written in place (a FIFO, a
// device), not through a temporary file.
func (o *OutputFile) Direct() bool { return o.tmp == "" }

// Commit renames the temporary file into place (writes go on to the same
// file). It is idempotent and does nothing for a direct output.
func (o *OutputFile) Commit() error {
	if o.dir != nil {
		return o.dir.Commit()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tmp == "" || o.committed {
		return nil
	}
	if o.closed {
		return fmt.Errorf("session: output %s: closed before it was committed", o.path)
	}
	if err := os.Rename(o.tmp, o.path); err != nil {
		return fmt.Errorf("session: output %s: %w", o.path, err)
	}
	o.committed = true
	return nil
}

// Close closes the file; a temporary file never committed is removed.
func (o *OutputFile) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	err := o.f.Close()
	if o.tmp != "" && !o.committed {
		os.Remove(o.tmp)
	}
	return err
}

// PointFiles returns an Options.PointOutput that writes each point's pcap
// to dir, named after the point with "/" as "_" ("esx01_vmnic2_rx.pcap"),
// through OutputFile: an existing file is replaced only once every point
// streams, and a run that fails before that leaves it as it was.
func PointFiles(dir string) func(Point) (io.WriteCloser, error) {
	return func(p Point) (io.WriteCloser, error) {
		f, err := OpenOutput(context.Background(), filepath.Join(dir, PointFileName(p)))
		if err != nil {
			return nil, fmt.Errorf("session: pcap file of %s: %w", p.Name(), err)
		}
		return f, nil
	}
}

// PointFileName is the file name PointFiles uses for p.
func PointFileName(p Point) string { return strings.ReplaceAll(p.Name(), "/", "_") + ".pcap" }

// committer is an output renamed into place once every point streams.
type committer interface{ Commit() error }

// pipeOf returns the pipe or FIFO behind an output, if any.
func pipeOf(w io.Writer) *os.File {
	var f *os.File
	switch v := w.(type) {
	case *os.File:
		f = v
	case *OutputFile:
		f = v.f
	default:
		return nil
	}
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
		return f
	}
	return nil
}

// guard passes writes to w on its own goroutine so that a blocked reader
// holds up the capture while it runs (the hosts then drop and count
// frames) but never its stop: once stopping is closed, a write not taken
// within outputStall fails with ErrOutputStalled, as does every later
// one. An EPIPE becomes ErrReaderGone. The first error sticks.
type guard struct {
	w        io.Writer
	stopping <-chan struct{}
	req      chan []byte
	res      chan error
	dead     chan struct{} // closed on the first error
	once     sync.Once
	err      error
	wg       sync.WaitGroup
	buf      []byte // the last write's copy, the loop done with it
}

func newGuard(w io.Writer, stopping <-chan struct{}) *guard {
	g := &guard{w: w, stopping: stopping, req: make(chan []byte), res: make(chan error, 1), dead: make(chan struct{})}
	g.wg.Go(g.loop)
	return g
}

func (g *guard) loop() {
	for {
		select {
		case p := <-g.req:
			_, err := g.w.Write(p)
			if errors.Is(err, syscall.EPIPE) {
				err = fmt.Errorf("%w: %w", ErrReaderGone, err)
			}
			g.res <- err
		case <-g.dead:
			return
		}
	}
}

func (g *guard) fail(err error) {
	g.once.Do(func() { g.err = err; close(g.dead) })
}

// failed returns the guard's sticky error.
func (g *guard) failed() error {
	select {
	case <-g.dead:
		return g.err
	default:
		return nil
	}
}

func (g *guard) Write(p []byte) (int, error) {
	if err := g.failed(); err != nil {
		return 0, err
	}
	// Writes are serialised (Session.outMu) and the loop takes the next
	// one as soon as it sent the last result: this send does not wait.
	// The loop writes a copy: an abandoned write may still hold it. The
	// copy of a write that completed is free again.
	buf := append(g.buf[:0], p...)
	g.buf = nil
	select {
	case g.req <- buf:
	case <-g.dead:
		return 0, g.failed()
	}
	stopping := g.stopping
	var stall <-chan time.Time
	for {
		select {
		case err := <-g.res:
			if err != nil {
				g.fail(err)
				return 0, g.failed()
			}
			g.buf = buf
			return len(p), nil
		case <-stopping:
			stopping = nil
			t := time.NewTimer(outputStall)
			defer t.Stop()
			stall = t.C
		case <-stall:
			g.fail(fmt.Errorf("%w (it took nothing for %v after the stop)", ErrOutputStalled, outputStall))
			return 0, g.failed()
		case <-g.dead:
			return 0, g.failed()
		}
	}
}

// close ends the loop. A loop that is idle returns at once and close
// waits for it; one stuck in a write the reader never takes (the guard
// stalled) is left to end when its file is closed by its owner.
func (g *guard) close() {
	stalled := errors.Is(g.failed(), ErrOutputStalled)
	g.fail(errors.New("session: output closed"))
	if !stalled {
		g.wg.Wait()
	}
}

// ErrRunDirInUse: a run directory holds an earlier run's files (replace
// them with force) or files of something else (never replaced).
var ErrRunDirInUse = errors.New("directory in use")

// RunDir is a directory that receives one run's files (trace --out): the
// files are written into a new directory beside it, renamed into place by
// Commit once every point streams, so that the directory never mixes two
// runs and a run that fails to start leaves an earlier one as it was.
type RunDir struct {
	path, tmp string
	mu        sync.Mutex
	committed bool
}

// CheckRunDir says whether path may receive a run whose files are named
// names: it may not exist yet or be empty; with force it may hold an
// earlier run (only files of those names). It changes nothing. The path
// "" is no directory: nil.
func CheckRunDir(path string, force bool, names []string) error {
	if path == "" {
		return nil
	}
	ents, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("session: run directory %s: %w", path, err)
	}
	var ours, other []string
	for _, e := range ents {
		if slices.Contains(names, e.Name()) && e.Type().IsRegular() {
			ours = append(ours, e.Name())
		} else {
			other = append(other, e.Name())
		}
	}
	switch {
	case len(other) > 0:
		return fmt.Errorf("session: run directory %s: %w: it holds %s, which are not a run's files; it is never replaced",
			path, ErrRunDirInUse, strings.Join(other, ", "))
	case len(ours) > 0 && !force:
		return fmt.Errorf("session: run directory %s: %w: it holds an earlier run (%s)", path, ErrRunDirInUse, strings.Join(ours, ", "))
	}
	return nil
}

// OpenRunDir checks path (CheckRunDir) and makes the new directory beside
// it.
func OpenRunDir(path string, force bool, names []string) (*RunDir, error) {
	if err := CheckRunDir(path, force, names); err != nil {
		return nil, err
	}
	path = filepath.Clean(path)
	tmp, err := os.MkdirTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("session: run directory %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("session: run directory %s: %w", path, err)
	}
	return &RunDir{path: path, tmp: tmp}, nil
}

// Path is where the run's file name is: in the new directory, and after
// Commit in place (files opened before Commit stay open through it).
func (d *RunDir) Path(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.committed {
		return filepath.Join(d.path, name)
	}
	return filepath.Join(d.tmp, name)
}

// Create creates the run's file name in the new directory, as an output
// whose Commit commits the directory: given as Options.Output, the
// session renames the directory into place once every point streams.
func (d *RunDir) Create(name string) (*OutputFile, error) {
	f, err := os.Create(d.Path(name))
	if err != nil {
		return nil, fmt.Errorf("session: run directory %s: %w", d.path, err)
	}
	return &OutputFile{f: f, path: filepath.Join(d.path, name), dir: d}, nil
}

// Commit renames the new directory into place; an earlier one is moved
// aside first and removed after. Idempotent.
func (d *RunDir) Commit() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.committed {
		return nil
	}
	old := ""
	if _, err := os.Lstat(d.path); err == nil {
		old = d.tmp + ".old"
		if err := os.Rename(d.path, old); err != nil {
			return fmt.Errorf("session: run directory %s: move the earlier run aside: %w", d.path, err)
		}
	}
	if err := os.Rename(d.tmp, d.path); err != nil {
		if old != "" {
			os.Rename(old, d.path)
		}
		return fmt.Errorf("session: run directory %s: %w", d.path, err)
	}
	d.committed = true
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// Close removes the new directory if it was never committed.
func (d *RunDir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.committed {
		return nil
	}
	return os.RemoveAll(d.tmp)
}
