package pktcap

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Record is one item of pktcap-uw console output: a *ConsoleFrame or a
// *TextLine.
type Record interface{ record() }

// ConsoleFrame is one captured frame of console output:
//
//	16:13:16.471308[1] Captured at EtherswitchDispath point, TSO not enabled, Checksum not offloaded and not verified, VLAN tag 100, length 98.
//	Segment[0] ---- 98 bytes:
//	0x0000:  0050 569d fdb1 0050 569d 4342 0800 4500
//	...
//
// or, with --trace, a header ending "capture length 24 of 74." followed by
// "PATH:" and "+- [12:58:49.759976] | VnicTx" lines.
type ConsoleFrame struct {
	TimeOfDay time.Duration // since midnight, host clock (the date is not printed)
	Seq       int           // the [N] after the time
	Point     string        // as printed: "EtherswitchDispath", "UplinkRcvKernel", ...
	Flags     []string      // e.g. "TSO not enabled", "Checksum not offloaded and not verified"
	VLAN      int           // "VLAN tag N"; -1 when the header has none
	Length    int           // frame length: "length N" or the N of "capture length C of N"
	// CapLength is C of "capture length C of N" (--trace headers); 0 when the
	// header has the plain "length N" form.
	CapLength int
	// SegmentSize is N of "Segment[0] ---- N bytes:": equal to the frame
	// length on 5.5/6.7 but a buffer size (2048) on newer builds; use Length.
	// 0 when there was no segment line.
	SegmentSize int
	Data        []byte     // bytes of the hex dump (all segments)
	Trace       []TraceHop // --trace path, in printed order
	// Layout is how this frame was laid out in the text it was parsed from;
	// nil for frames built in code, which are written in the writer's Style.
	Layout *FrameLayout
}

// TraceHop is one "+- [HH:MM:SS.micro] | Point" line of a --trace path.
type TraceHop struct {
	TimeOfDay time.Duration
	Point     string
}

// Segment is one "Segment[i] ---- N bytes:" block when a frame has more
// than one (not seen in real output; kept so that such output round-trips).
type Segment struct {
	Size int // the N printed
	Len  int // bytes of hex dump under it
}

// FrameLayout records the text layout of a parsed frame, so that a
// ConsoleWriter reproduces it byte for byte.
type FrameLayout struct {
	Prefix           string // before the header, e.g. "pktcap: " (assumption: not seen on frames)
	HeaderIndent     string
	SegmentIndent    string
	HexIndent        string
	HexTrailingSpace bool
	NoHeaderPeriod   bool   // header without the final "."
	PathIndent       string // before "PATH:"
	HopIndent        string // before "+- ["
	TraceBlankLines  bool   // a blank line before PATH: and before each hop
	Segments         []Segment
}

// TextLine is any other line (banner, status, summary, shell prompt, blank),
// kept exactly as read without its line terminator.
type TextLine struct {
	Text string
}

func (*ConsoleFrame) record() {}
func (*TextLine) record()     {}

// Message returns the line without indentation, "pktcap: " prefix, trailing
// white space and one trailing "." (unless the line ends in "..."), which is
// the part that does not vary between builds.
func (t *TextLine) Message() string { return normalizeText(t.Text) }

func normalizeText(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimSpace(strings.TrimPrefix(s, "pktcap:"))
	if strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "...") {
		s = s[:len(s)-1]
	}
	return s
}

// maxLine bounds one line of console text.
const maxLine = 1 << 20

// ConsoleReader parses pktcap-uw console text leniently: CRLF, indentation,
// "pktcap: " prefixes, trailing spaces and periods, blank lines, and any
// unknown line (kept as a TextLine). Only read errors are returned.
type ConsoleReader struct {
	sc      *bufio.Scanner
	pending []Record // ready to return, in order
	peeked  []string // lines read ahead
	err     error
}

// NewConsoleReader returns a reader of console text from r.
//
// Text saved on Windows is read too: a UTF-8 byte-order mark is skipped,
// and UTF-16 with its mark (what PowerShell's > writes) is decoded.
func NewConsoleReader(r io.Reader) *ConsoleReader {
	r = transform.NewReader(r, unicode.BOMOverride(unicode.UTF8.NewDecoder()))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	return &ConsoleReader{sc: sc}
}

// ReadConsole parses all of r.
func ReadConsole(r io.Reader) ([]Record, error) {
	cr := NewConsoleReader(r)
	var recs []Record
	for {
		rec, err := cr.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
}

// line returns the next input line without its terminator.
func (r *ConsoleReader) line() (string, bool) {
	if len(r.peeked) > 0 {
		l := r.peeked[0]
		r.peeked = r.peeked[1:]
		return l, true
	}
	if r.err != nil {
		return "", false
	}
	if !r.sc.Scan() {
		if err := r.sc.Err(); err != nil {
			r.err = fmt.Errorf("pktcap: read console text: %w", err)
		} else {
			r.err = io.EOF
		}
		return "", false
	}
	return strings.TrimSuffix(r.sc.Text(), "\r"), true
}

func (r *ConsoleReader) unread(l ...string) { r.peeked = append(l, r.peeked...) }

// Next returns the next record, or io.EOF at the end.
func (r *ConsoleReader) Next() (Record, error) {
	if len(r.pending) > 0 {
		rec := r.pending[0]
		r.pending = r.pending[1:]
		return rec, nil
	}
	l, ok := r.line()
	if !ok {
		return nil, r.err
	}
	f, ok := parseHeader(l)
	if !ok {
		return &TextLine{Text: l}, nil
	}
	r.readBody(f)
	return f, nil
}

// indentOf splits leading white space from s.
func indentOf(s string) (indent, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[:i], s[i:]
}

// readBody consumes segment, hex and trace lines that belong to f.
func (r *ConsoleReader) readBody(f *ConsoleFrame) {
	lay := f.Layout
	var blanks []string
	seg := -1
	for {
		l, ok := r.line()
		if !ok {
			break
		}
		if strings.TrimSpace(l) == "" {
			blanks = append(blanks, l)
			continue
		}
		ind, body := indentOf(l)
		body = strings.TrimSpace(strings.TrimPrefix(body, "pktcap:"))
		switch {
		case len(blanks) == 0 && strings.HasPrefix(body, "Segment["):
			size, ok := parseSegment(body)
			if !ok {
				r.unread(l)
				return
			}
			if seg < 0 {
				f.SegmentSize = size
				lay.SegmentIndent = ind
			}
			seg++
			lay.Segments = append(lay.Segments, Segment{Size: size})
			continue
		case len(blanks) == 0 && seg >= 0 && strings.HasPrefix(body, "0x"):
			data, trailing, ok := parseHexLine(l)
			if ok {
				if lay.Segments[seg].Len == 0 && seg == 0 && len(f.Data) == 0 {
					lay.HexIndent = ind
					lay.HexTrailingSpace = trailing
				}
				f.Data = append(f.Data, data...)
				lay.Segments[seg].Len += len(data)
				continue
			}
		case body == "PATH:" && f.Trace == nil && len(blanks) <= 1:
			lay.PathIndent = ind
			lay.TraceBlankLines = len(blanks) == 1
			blanks = nil
			f.Trace = []TraceHop{}
			continue
		case f.Trace != nil && strings.HasPrefix(body, "+-") && len(blanks) == boolInt(lay.TraceBlankLines):
			if hop, ok := parseHop(body); ok {
				if len(f.Trace) == 0 {
					lay.HopIndent = ind
				}
				f.Trace = append(f.Trace, hop)
				blanks = nil
				continue
			}
		}
		r.unread(l)
		break
	}
	if len(lay.Segments) <= 1 {
		lay.Segments = nil
	}
	for _, b := range blanks {
		r.pending = append(r.pending, &TextLine{Text: b})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseClock parses HH:MM:SS[.fraction] into a duration since midnight.
func parseClock(s string) (time.Duration, bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, false
	}
	h, ok1 := atoiDigits(s[0:2])
	m, ok2 := atoiDigits(s[3:5])
	sec, ok3 := atoiDigits(s[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return 0, false
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second
	if len(s) == 8 {
		return d, true
	}
	frac := s[8:]
	if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
		return 0, false
	}
	n, ok := atoiDigits(frac[1:])
	if !ok {
		return 0, false
	}
	for i := len(frac) - 1; i < 9; i++ {
		n *= 10
	}
	return d + time.Duration(n), true
}

// atoiDigits parses a non-empty string of ASCII digits (at most 9).
func atoiDigits(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseHeader parses a frame header line.
func parseHeader(l string) (*ConsoleFrame, bool) {
	lay := &FrameLayout{}
	ind, body := indentOf(l)
	lay.HeaderIndent = ind
	if strings.HasPrefix(body, "pktcap:") {
		p := "pktcap:"
		rest := body[len(p):]
		sp, rest2 := indentOf(rest)
		lay.Prefix = p + sp
		body = rest2
	}
	body = strings.TrimRight(body, " \t")
	br := strings.IndexByte(body, '[')
	if br < 8 {
		return nil, false
	}
	tod, ok := parseClock(body[:br])
	if !ok {
		return nil, false
	}
	end := strings.IndexByte(body[br:], ']')
	if end < 0 {
		return nil, false
	}
	seq, ok := atoiDigits(body[br+1 : br+end])
	if !ok {
		return nil, false
	}
	rest, ok := strings.CutPrefix(body[br+end+1:], " Captured at ")
	if !ok {
		return nil, false
	}
	sp := strings.IndexByte(rest, ' ')
	if sp <= 0 {
		return nil, false
	}
	f := &ConsoleFrame{TimeOfDay: tod, Seq: seq, Point: rest[:sp], VLAN: -1, Layout: lay}
	rest, ok = strings.CutPrefix(rest[sp:], " point")
	if !ok {
		return nil, false
	}
	if strings.HasSuffix(rest, ".") {
		rest = rest[:len(rest)-1]
	} else {
		lay.NoHeaderPeriod = true
	}
	gotLen := false
	for _, item := range strings.Split(rest, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		switch {
		case strings.HasPrefix(item, "VLAN tag "):
			v, ok := atoiDigits(item[len("VLAN tag "):])
			if !ok {
				return nil, false
			}
			f.VLAN = v
		case strings.HasPrefix(item, "capture length "):
			c, n, found := strings.Cut(item[len("capture length "):], " of ")
			cl, ok1 := atoiDigits(c)
			fl, ok2 := atoiDigits(n)
			if !found || !ok1 || !ok2 {
				return nil, false
			}
			f.CapLength, f.Length, gotLen = cl, fl, true
		case strings.HasPrefix(item, "length "):
			n, ok := atoiDigits(item[len("length "):])
			if !ok {
				return nil, false
			}
			f.Length, gotLen = n, true
		default:
			f.Flags = append(f.Flags, item)
		}
	}
	if !gotLen {
		return nil, false
	}
	return f, true
}

// parseSegment parses "Segment[i] ---- N bytes:".
func parseSegment(body string) (int, bool) {
	_, rest, ok := strings.Cut(body, "] ---- ")
	if !ok {
		return 0, false
	}
	n, ok := strings.CutSuffix(strings.TrimSpace(rest), " bytes:")
	if !ok {
		return 0, false
	}
	return atoiDigits(n)
}

// parseHexLine parses "0x0010:  0054 15e5 ..." and reports whether the
// line had trailing white space.
func parseHexLine(l string) ([]byte, bool, bool) {
	trimmed := strings.TrimRight(l, " \t")
	trailing := len(trimmed) != len(l)
	_, body := indentOf(trimmed)
	body = strings.TrimSpace(strings.TrimPrefix(body, "pktcap:"))
	colon := strings.IndexByte(body, ':')
	if colon < 3 || body[:2] != "0x" {
		return nil, false, false
	}
	if _, err := strconv.ParseUint(body[2:colon], 16, 32); err != nil {
		return nil, false, false
	}
	var data []byte
	for _, g := range strings.Fields(body[colon+1:]) {
		if len(g)%2 != 0 || len(g) > 8 {
			return nil, false, false
		}
		for i := 0; i < len(g); i += 2 {
			hi, ok1 := unhex(g[i])
			lo, ok2 := unhex(g[i+1])
			if !ok1 || !ok2 {
				return nil, false, false
			}
			data = append(data, hi<<4|lo)
		}
	}
	if len(data) == 0 {
		return nil, false, false
	}
	return data, trailing, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseHop parses "+- [12:58:49.759976] | VnicTx".
func parseHop(body string) (TraceHop, bool) {
	rest := strings.TrimSpace(strings.TrimPrefix(body, "+-"))
	if !strings.HasPrefix(rest, "[") {
		return TraceHop{}, false
	}
	ts, rest, ok := strings.Cut(rest[1:], "]")
	if !ok {
		return TraceHop{}, false
	}
	tod, ok := parseClock(ts)
	if !ok {
		return TraceHop{}, false
	}
	rest = strings.TrimSpace(rest)
	pt, ok := strings.CutPrefix(rest, "|")
	if !ok {
		return TraceHop{}, false
	}
	pt = strings.TrimSpace(pt)
	if pt == "" {
		return TraceHop{}, false
	}
	return TraceHop{TimeOfDay: tod, Point: pt}, true
}

// Observation converts f into an Observation at capture point index point,
// dating the time of day on day's date (in day's location).
func (f *ConsoleFrame) Observation(point int, day time.Time) Observation {
	y, m, d := day.Date()
	t := time.Date(y, m, d, 0, 0, 0, 0, day.Location()).Add(f.TimeOfDay)
	return Observation{Point: point, Time: t, Data: f.Data, OrigLen: f.Length, VLAN: f.VLAN}
}
