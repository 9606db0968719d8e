package ingest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// InputError is an input that could not be read: it does not open, is
// corrupt, or is not a capture (Err is then ErrNotCapture).
type InputError struct {
	Input string // the input's Name
	Err   error
}

func (e *InputError) Error() string {
	if pathErrorOf(e) != nil {
		return "ingest: " + e.Err.Error() // "open NAME: ..." names it already
	}
	return "ingest: " + e.Input + ": " + e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

// pathErrorOf is the error of opening the input itself, if that is what
// failed.
func pathErrorOf(e *InputError) *fs.PathError {
	var pe *fs.PathError
	if errors.As(e.Err, &pe) && pe.Path == e.Input {
		return pe
	}
	return nil
}

// ErrNotCapture is the Err of an InputError for an input that is not a
// capture: neither pcap nor pcapng, and no pktcap-uw console frame in it.
var ErrNotCapture = errors.New("not a pcap or pcapng file, and no pktcap-uw console frames in it (nor tcpdump-uw -xx text)")

// inputErr wraps err as an error of input name.
func inputErr(name string, err error) error { return &InputError{Input: name, Err: err} }

// readEnd is the error that ends a read: none at the end of the input,
// or where it was cut short (a killed capture is read up to the cut).
func readEnd(name string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return inputErr(name, err)
}

// Problem is what is wrong with the naming of an input's points.
type Problem int

const (
	// Unnamed: the input is a pcap file, which names no point: name it
	// with Input.Point.
	Unnamed Problem = iota + 1
	// NotAPoint: the name the input gives (Name: a pcapng interface's, or
	// the point of a console run that lacks the banner naming its uplink
	// or port) is not a capture point name; Err says why. Name the point
	// with Input.Point or Input.Interfaces, or add the banner.
	NotAPoint
	// BadName: the name Input.Point or Input.Interfaces gives (Name) is
	// not a capture point name; Err says why.
	BadName
	// TooManyInterfaces: Input.Point names the one point of a pcapng that
	// has Count interfaces: name each with Input.Interfaces.
	TooManyInterfaces
	// TooManySessions: Input.Point names the one point of console text
	// that holds Count pktcap-uw sessions, or one session at several
	// points: the banners name them.
	TooManySessions
	// NoSuchInterface: Input.Interfaces names interface Iface of an input
	// that has Count interfaces (0: not a pcapng); Named says how many it
	// names. A pcapng that mergecap wrote (Application) holds the frames of
	// all the files it merged in one interface unless it was run with
	// -I none.
	NoSuchInterface
	// AmbiguousBanner: console run Run has no banner of its own, and the
	// banner after its frames, before another session's frames, could
	// name either run (no summary line between tells): it is taken to
	// name the later one, as a banner before its frames does.
	AmbiguousBanner
)

// NameError is an input whose points are not named, or not named well.
// Its fields say which point, so that a caller can tell its user how to
// name it in the caller's own terms (a command line's --point, say).
type NameError struct {
	Input   string // the input's Name
	Problem Problem
	// Iface is the pcapng interface concerned (from 0), -1 if none.
	Iface int
	// Run is the console run (pktcap-uw session) concerned (from 1), 0 if
	// none.
	Run int
	// Count is how many interfaces or sessions the input holds (see
	// Problem).
	Count int
	// Name is the name at fault: the caller's (BadName, TooMany*,
	// NoSuchInterface) or the input's own (NotAPoint).
	Name string
	// Err is why Name is not a capture point name (NotAPoint, BadName).
	Err error
	// Named is how many interfaces Input.Interfaces names
	// (NoSuchInterface).
	Named int
	// Application is what wrote the pcapng, from its section header
	// (shb_userappl, e.g. "Mergecap (Wireshark) 4.0.17"); "" if it does
	// not say. See Merged.
	Application string
}

// Merged says that mergecap wrote the pcapng: with its default interface
// merging (-I all) the frames of every file it merged share one interface,
// so their capture points can no longer be told apart; mergecap -I none
// keeps one interface per file.
func (e *NameError) Merged() bool { return strings.HasPrefix(e.Application, "Mergecap") }

// mergeHint is what Error adds for a file mergecap merged.
func (e *NameError) mergeHint() string {
	if !e.Merged() {
		return ""
	}
	return fmt.Sprintf(" (%s wrote the file: mergecap merges the interfaces of the files it merges into one unless run with -I none)", e.Application)
}

func (e *NameError) Error() string {
	var s string
	switch e.Problem {
	case Unnamed:
		s = "a pcap file names no capture point: name it (Input.Point)"
	case NotAPoint:
		if e.Run > 0 {
			s = fmt.Sprintf("run %d: the console text lacks the banner that names the point "+
				"(\"The name of the uplink is vmnicN\", \"The switch port id is 0x...\"), and %q is not a point name", e.Run, e.Name)
		} else {
			s = fmt.Sprintf("interface %d is named %q, not after a capture point: name it (Input.Interfaces or Input.Point)", e.Iface, e.Name) + e.mergeHint()
		}
	case BadName:
		s = fmt.Sprintf("point %q", e.Name)
	case TooManyInterfaces:
		s = fmt.Sprintf("Input.Point %q names one point, but the pcapng has %d interfaces: name each (Input.Interfaces)", e.Name, e.Count)
	case TooManySessions:
		s = fmt.Sprintf("Input.Point %q names one point, but the console text holds %d pktcap-uw sessions or points: the banners name them", e.Name, e.Count)
	case NoSuchInterface:
		if e.Count == 0 {
			s = fmt.Sprintf("Input.Interfaces names interface %d (%q), but the input is not a pcapng", e.Iface, e.Name)
		} else {
			s = fmt.Sprintf("Input.Interfaces names interface %d (%q), but the pcapng has %d", e.Iface, e.Name, e.Count) + e.mergeHint()
		}
	case AmbiguousBanner:
		s = fmt.Sprintf("run %d: the banner after its frames comes before another session's frames and could name either; it names the later one, so run %d has none", e.Run, e.Run)
	default:
		s = fmt.Sprintf("point naming problem %d", e.Problem)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return "ingest: " + e.Input + ": " + s
}

func (e *NameError) Unwrap() error { return e.Err }
