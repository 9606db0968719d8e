package ingest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// SpoolLimit is the most Spool copies by default: 4 GiB, a capture of
// several million frames.
const SpoolLimit int64 = 4 << 30

// ErrSpoolFull is the Err of an InputError for standard input longer than
// the spool's limit.
var ErrSpoolFull = errors.New("longer than the spool's limit")

// Spool makes a stream that can be read only once (standard input, a
// pipe) an input: every form is read from a temporary file in dir ("":
// os.TempDir()) that holds a copy, since a pcap or pcapng is read more
// than once and console text may give its banner last. It copies at most
// limit bytes (<= 0: SpoolLimit); more is an *InputError (ErrSpoolFull)
// saying to save the stream to a file. The input is named name
// (StdinName for standard input). Remove the copy with the returned
// function once the input is no longer read.
func Spool(r io.Reader, name, dir string, limit int64) (Input, func() error, error) {
	if limit <= 0 {
		limit = SpoolLimit
	}
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "capturectl-spool-*")
	if err != nil {
		return Input{}, nil, inputErr(name, fmt.Errorf("spool: %w", err))
	}
	path := f.Name()
	remove := func() error { return os.Remove(path) }
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		remove()
		return Input{}, nil, inputErr(name, fmt.Errorf("spool to %s: %w", path, err))
	case n > limit:
		remove()
		return Input{}, nil, inputErr(name, fmt.Errorf("%w (%d MiB, in %s): save it to a file and analyze the file", ErrSpoolFull, limit>>20, dir))
	}
	in := Input{Name: name, Open: func() (io.ReadCloser, error) { return os.Open(path) }}
	return in, remove, nil
}

// ErrStdinTwice is the error of SpoolStdin for inputs that name standard
// input more than once.
var ErrStdinTwice = errors.New("- (standard input) is given twice: it can be read once")

// SpoolStdin spools r (standard input) for the input of inputs named
// StdinName, if there is one, keeping its Point and Interfaces; remove
// deletes the copy.
func SpoolStdin(inputs []Input, r io.Reader) (remove func() error, err error) {
	k := slices.IndexFunc(inputs, func(in Input) bool { return in.Name == StdinName })
	switch {
	case k < 0:
		return func() error { return nil }, nil
	case slices.ContainsFunc(inputs[k+1:], func(in Input) bool { return in.Name == StdinName }):
		return nil, ErrStdinTwice
	}
	in, remove, err := Spool(r, StdinName, "", 0)
	if err != nil {
		return nil, err
	}
	in.Point, in.Interfaces = inputs[k].Point, inputs[k].Interfaces
	inputs[k] = in
	return remove, nil
}
