package shell

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// FS is a small in-memory filesystem for one emulated host: regular files
// and directories, plus /dev/null. It persists across Run calls (and so
// across SSH sessions), which is what lease files under /tmp need. It is safe
// for concurrent use.
type FS struct {
	mu    sync.Mutex
	nodes map[string]*node // by clean absolute path
	now   func() time.Time
}

type node struct {
	dir     bool
	dev     bool // /dev/null
	data    []byte
	modTime time.Time
}

// Errors of FS operations; they wrap the io/fs errors so errors.Is works.
var (
	errNotExist = fs.ErrNotExist
	errExist    = fs.ErrExist
	errIsDir    = errors.New("is a directory")
	errNotDir   = errors.New("not a directory")
	errNotEmpty = errors.New("directory not empty")
	errInvalid  = errors.New("invalid argument")
)

// NewFS returns a filesystem with /, /bin, /dev/null, /etc, /tmp, /var/log
// and /var/run. now may be nil (time.Now).
func NewFS(now func() time.Time) *FS {
	if now == nil {
		now = time.Now
	}
	f := &FS{nodes: make(map[string]*node), now: now}
	for _, d := range []string{"/", "/bin", "/dev", "/etc", "/tmp", "/var", "/var/log", "/var/run", "/vmfs", "/vmfs/volumes"} {
		f.nodes[d] = &node{dir: true, modTime: now()}
	}
	f.nodes["/dev/null"] = &node{dev: true, modTime: now()}
	return f
}

func clean(p string) string { return path.Clean("/" + p) }

// ReadFile returns a copy of the file's contents.
func (f *FS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[clean(name)]
	switch {
	case !ok:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotExist}
	case n.dir:
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	case n.dev:
		return nil, nil
	}
	return bytes.Clone(n.data), nil
}

// WriteFile creates or truncates a file; its directory must exist.
func (f *FS) WriteFile(name string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.createLocked(name, false)
	if err != nil {
		return err
	}
	if !n.dev {
		n.data = bytes.Clone(data)
	}
	return nil
}

// createLocked opens name for writing, creating it, truncating unless
// appending.
func (f *FS) createLocked(name string, appending bool) (*node, error) {
	p := clean(name)
	if n, ok := f.nodes[p]; ok {
		if n.dir {
			return nil, &fs.PathError{Op: "create", Path: name, Err: errIsDir}
		}
		if !appending && !n.dev {
			n.data = nil
		}
		n.modTime = f.now()
		return n, nil
	}
	if d, ok := f.nodes[path.Dir(p)]; !ok || !d.dir {
		return nil, &fs.PathError{Op: "create", Path: name, Err: errNotExist}
	}
	n := &node{modTime: f.now()}
	f.nodes[p] = n
	return n, nil
}

// Create creates or truncates a file (its directory must exist) and returns
// a writer that appends to it, as a program writing a file on the host does
// (pktcap-uw -o FILE). Close is a no-op kept for io.WriteCloser.
func (f *FS) Create(name string) (io.WriteCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.createLocked(name, false)
	if err != nil {
		return nil, err
	}
	if n.dev {
		return nopCloser{io.Discard}, nil
	}
	return nopCloser{fileWriter{f, n}}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Mkdir creates one directory; with parents, missing parents too and no
// error when it exists.
func (f *FS) Mkdir(name string, parents bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mkdirLocked(clean(name), name, parents)
}

func (f *FS) mkdirLocked(p, name string, parents bool) error {
	if n, ok := f.nodes[p]; ok {
		if parents && n.dir {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: name, Err: errExist}
	}
	dir := path.Dir(p)
	d, ok := f.nodes[dir]
	switch {
	case ok && !d.dir:
		return &fs.PathError{Op: "mkdir", Path: name, Err: errNotDir}
	case !ok && !parents:
		return &fs.PathError{Op: "mkdir", Path: name, Err: errNotExist}
	case !ok:
		if err := f.mkdirLocked(dir, name, true); err != nil {
			return err
		}
	}
	f.nodes[p] = &node{dir: true, modTime: f.now()}
	return nil
}

// Remove deletes a file, or an empty directory when dir is true.
func (f *FS) Remove(name string, dir bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := clean(name)
	n, ok := f.nodes[p]
	if !ok || p == "/" {
		return &fs.PathError{Op: "remove", Path: name, Err: errNotExist}
	}
	if n.dir {
		if !dir {
			return &fs.PathError{Op: "remove", Path: name, Err: errIsDir}
		}
		if f.hasChildrenLocked(p) {
			return &fs.PathError{Op: "remove", Path: name, Err: errNotEmpty}
		}
	}
	delete(f.nodes, p)
	return nil
}

func (f *FS) hasChildrenLocked(p string) bool {
	for q := range f.nodes {
		if strings.HasPrefix(q, p+"/") {
			return true
		}
	}
	return false
}

// Rename moves a file, or a directory with everything under it, as
// rename(2) does: it replaces an existing file, or an empty directory when
// it moves a directory.
func (f *FS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, np := clean(oldname), clean(newname)
	fail := func(err error) error { return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err} }
	n, ok := f.nodes[op]
	d, dok := f.nodes[path.Dir(np)]
	switch {
	case !ok || !dok:
		return fail(errNotExist)
	case !d.dir:
		return fail(errNotDir)
	case op == np:
		return nil
	case op == "/" || n.dir && strings.HasPrefix(np, op+"/"):
		return fail(errInvalid)
	}
	if m, ok := f.nodes[np]; ok {
		switch {
		case n.dir && !m.dir:
			return fail(errNotDir)
		case !n.dir && m.dir:
			return fail(errIsDir)
		case m.dir && f.hasChildrenLocked(np):
			return fail(errNotEmpty)
		}
	}
	moved := make(map[string]*node)
	for q, x := range f.nodes {
		if q == op || n.dir && strings.HasPrefix(q, op+"/") {
			delete(f.nodes, q)
			moved[np+q[len(op):]] = x
		}
	}
	maps.Copy(f.nodes, moved)
	return nil
}

// FileInfo is what Stat and ReadDir return.
type FileInfo struct {
	Name    string
	Size    int
	Dir     bool
	ModTime time.Time
}

// Stat describes one path.
func (f *FS) Stat(name string) (FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := clean(name)
	n, ok := f.nodes[p]
	if !ok {
		return FileInfo{}, &fs.PathError{Op: "stat", Path: name, Err: errNotExist}
	}
	return FileInfo{Name: path.Base(p), Size: len(n.data), Dir: n.dir, ModTime: n.modTime}, nil
}

// ReadDir lists a directory, sorted by name.
func (f *FS) ReadDir(name string) ([]FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := clean(name)
	d, ok := f.nodes[p]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotExist}
	}
	if !d.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	var out []FileInfo
	for q, n := range f.nodes {
		if q != "/" && path.Dir(q) == p {
			out = append(out, FileInfo{Name: path.Base(q), Size: len(n.data), Dir: n.dir, ModTime: n.modTime})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// paths returns every path, sorted (for glob expansion).
func (f *FS) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.nodes))
	for p := range f.nodes {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// openWrite opens name as a shell redirection does (> or >>).
func (f *FS) openWrite(name string, appending bool) (*ofile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.createLocked(name, appending)
	if err != nil {
		return nil, err
	}
	if n.dev {
		return devNull(), nil
	}
	return newOfile(nil, fileWriter{f, n}, nil), nil
}

// openRead opens name for reading: the reader sees the contents as they are
// when it reads (data appended later is read too).
func (f *FS) openRead(name string) (*ofile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[clean(name)]
	switch {
	case !ok:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotExist}
	case n.dev:
		return devNull(), nil
	case n.dir:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errIsDir}
	}
	return newOfile(&fileReader{fs: f, n: n}, nil, nil), nil
}

type fileWriter struct {
	fs *FS
	n  *node
}

func (w fileWriter) Write(b []byte) (int, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	w.n.data = append(w.n.data, b...)
	w.n.modTime = w.fs.now()
	return len(b), nil
}

type fileReader struct {
	fs  *FS
	n   *node
	off int
}

func (r *fileReader) Read(b []byte) (int, error) {
	r.fs.mu.Lock()
	defer r.fs.mu.Unlock()
	if r.off >= len(r.n.data) {
		return 0, io.EOF
	}
	k := copy(b, r.n.data[r.off:])
	r.off += k
	return k, nil
}

// errText is the strerror text busybox prints for err.
func errText(err error) string {
	switch {
	case errors.Is(err, errNotExist):
		return "No such file or directory"
	case errors.Is(err, errExist):
		return "File exists"
	case errors.Is(err, errIsDir):
		return "Is a directory"
	case errors.Is(err, errNotDir):
		return "Not a directory"
	case errors.Is(err, errNotEmpty):
		return "Directory not empty"
	case errors.Is(err, errInvalid):
		return "Invalid argument"
	}
	return fmt.Sprint(err)
}
