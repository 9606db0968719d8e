package shell

import (
	"errors"
	"io"
	"reflect"
	"sync"
)

// maxFD is the number of file descriptors a process has (0..9, as ash
// allows in redirections).
const maxFD = 10

// ofile is an open file description shared by every descriptor that refers
// to it (after fork, dup, 2>&1). When the last reference goes, release runs:
// it closes a pipe end, or tells Host.Run that a caller's stream is no longer
// held by any process (sshd closes the channel only then).
type ofile struct {
	r io.Reader
	w io.Writer

	mu       sync.Mutex
	refs     int
	released bool
	release  func()
}

func newOfile(r io.Reader, w io.Writer, release func()) *ofile {
	return &ofile{r: r, w: w, refs: 1, release: release}
}

func (f *ofile) ref() *ofile {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
	return f
}

func (f *ofile) unref() {
	f.mu.Lock()
	f.refs--
	last := f.refs <= 0 && !f.released
	if last {
		f.released = true
	}
	f.mu.Unlock()
	if last && f.release != nil {
		f.release()
	}
}

// fdTable is a process's descriptors. Each non-nil entry holds one
// reference.
type fdTable [maxFD]*ofile

// clone returns a copy holding its own references (fork).
func (t fdTable) clone() fdTable {
	var c fdTable
	for i, f := range t {
		if f != nil {
			c[i] = f.ref()
		}
	}
	return c
}

func (t fdTable) release() {
	for _, f := range t {
		if f != nil {
			f.unref()
		}
	}
}

// set replaces descriptor n, dropping the old reference; f's reference is
// taken over.
func (t *fdTable) set(n int, f *ofile) {
	if old := t[n]; old != nil {
		old.unref()
	}
	t[n] = f
}

// errBrokenPipe is what a write to a pipe with no reader left returns.
var errBrokenPipe = errors.New("write: broken pipe")

// newPipe returns the read and write ends of a pipe. The reader sees EOF
// when the last writer reference goes; writers get errBrokenPipe when the
// last reader reference goes.
func newPipe() (r, w *ofile) {
	pr, pw := io.Pipe()
	r = newOfile(pr, nil, func() { pr.CloseWithError(errBrokenPipe) })
	w = newOfile(nil, pipeWriter{pw}, func() { pw.Close() })
	return r, w
}

type pipeWriter struct{ pw *io.PipeWriter }

func (p pipeWriter) Write(b []byte) (int, error) {
	n, err := p.pw.Write(b)
	if err != nil {
		err = errBrokenPipe
	}
	return n, err
}

// devNull is /dev/null opened for reading and writing.
func devNull() *ofile { return newOfile(eofReader{}, io.Discard, nil) }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// lockedWriter serialises writes from concurrent processes to a caller's
// writer (an SSH channel, a test buffer).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// sameWriter reports whether a and b are the same comparable value, so that
// one mutex orders their writes (a caller passing one buffer for both).
func sameWriter(a, b io.Writer) bool {
	if a == nil || b == nil {
		return false
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}
