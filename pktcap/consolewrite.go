package pktcap

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// Style is the text layout of one family of ESXi builds. Parsed frames carry
// their own FrameLayout, which wins over the Style; frames built in code are
// written in the Style.
type Style struct {
	Name string
	// Periods: banner and status lines end with "." ("Local CID 2.").
	Periods bool
	// StatusTrailingSpace: "Receive thread exiting... ", "Dump thread
	// exiting... " and "Destroying session 38 " end with a space (6.7).
	StatusTrailingSpace bool
	// FilePrefix starts every line from "The output file is" on when -o is
	// given ("pktcap: ").
	FilePrefix string
	// ThreadLines: "Main thread: N.", "Dump Thread: N.", "Recv Thread: N."
	// after "Listen on port N".
	ThreadLines bool
	// SplitAccept: "Accept..." and "Vsock connection from port N cid 2." on
	// two lines instead of one.
	SplitAccept bool
	// BlankBeforeSummary: an empty line before "Dumped ...".
	BlankBeforeSummary bool

	SegmentIndent    string // before "Segment[0]"
	HexIndent        string // before "0x0000:"
	HexTrailingSpace bool   // each hex line ends with a space (6.7)
	// SegmentBuffer, when > 0, is printed as the segment size for frames up
	// to that size ("Segment[0] ---- 2048 bytes:" on newer builds); 0 prints
	// the data length.
	SegmentBuffer int

	PathIndent      string // before "PATH:"
	HopIndent       string // before "+- [...]"
	TraceBlankLines bool   // a blank line before PATH: and each hop
}

// Style67 is ESXi 6.7 (and 5.5/6.0) as in the article's transcripts: no
// trailing periods on banner lines, a trailing space on hex and some status
// lines, no indentation, a blank line before the summary. The --trace layout
// follows the 6.0 forum sample without its blank lines (they are probably
// forum formatting). With -o no "pktcap: " prefix is added: 6.x -o output was
// not seen (assumption).
var Style67 = Style{
	Name:                "6.7",
	StatusTrailingSpace: true,
	HexTrailingSpace:    true,
	BlankBeforeSummary:  true,
	PathIndent:          "  ",
	HopIndent:           "   ",
}

// Style80 is newer builds (7.x/8.x), a lenient guess assembled from
// third-party transcripts whose exact build is not stated: periods on banner
// lines, thread-id lines, "Accept..." split from the vsock line, segment and
// hex lines indented by four spaces without trailing space, a 2048-byte
// segment size, "pktcap: " prefixes with -o (NSX-T and vSAN samples), no
// blank line before the summary (Intel's fixture).
var Style80 = Style{
	Name:          "8.0",
	Periods:       true,
	FilePrefix:    "pktcap: ",
	ThreadLines:   true,
	SplitAccept:   true,
	SegmentIndent: "    ",
	HexIndent:     "    ",
	SegmentBuffer: 2048,
	PathIndent:    "  ",
	HopIndent:     "   ",
}

// ConsoleWriter writes console records. Each record is one Write call on
// the underlying writer, so output is not held back.
type ConsoleWriter struct {
	w     io.Writer
	style Style
	buf   []byte
}

// NewConsoleWriter returns a writer of console text in style s.
func NewConsoleWriter(w io.Writer, s Style) *ConsoleWriter {
	return &ConsoleWriter{w: w, style: s}
}

// Write writes one record.
func (cw *ConsoleWriter) Write(rec Record) error {
	switch r := rec.(type) {
	case *ConsoleFrame:
		return cw.WriteFrame(r)
	case *TextLine:
		return cw.WriteLine(r.Text)
	}
	return fmt.Errorf("pktcap: write console: unknown record %T", rec)
}

// WriteLine writes s and a newline.
func (cw *ConsoleWriter) WriteLine(s string) error {
	cw.buf = append(append(cw.buf[:0], s...), '\n')
	return cw.flush()
}

func (cw *ConsoleWriter) flush() error {
	if _, err := cw.w.Write(cw.buf); err != nil {
		return fmt.Errorf("pktcap: write console: %w", err)
	}
	return nil
}

// appendClock appends HH:MM:SS.micro.
func appendClock(b []byte, d time.Duration) []byte {
	us := int64(d / time.Microsecond)
	h, m, s, f := us/3600e6, us/60e6%60, us/1e6%60, us%1e6
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, m)
	b = append(b, ':')
	b = append2(b, s)
	b = append(b, '.')
	for div := int64(100000); div > 0; div /= 10 {
		b = append(b, byte('0'+f/div%10))
	}
	return b
}

func append2(b []byte, n int64) []byte {
	if n < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, n, 10)
}

// WriteFrame writes a frame: header, segment and hex lines, trace path.
func (cw *ConsoleWriter) WriteFrame(f *ConsoleFrame) error {
	st := cw.style
	lay := FrameLayout{
		SegmentIndent:    st.SegmentIndent,
		HexIndent:        st.HexIndent,
		HexTrailingSpace: st.HexTrailingSpace,
		PathIndent:       st.PathIndent,
		HopIndent:        st.HopIndent,
		TraceBlankLines:  st.TraceBlankLines,
	}
	if f.Layout != nil {
		lay = *f.Layout
	}
	b := cw.buf[:0]
	b = append(b, lay.HeaderIndent...)
	b = append(b, lay.Prefix...)
	b = appendClock(b, f.TimeOfDay)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(f.Seq), 10)
	b = append(b, "] Captured at "...)
	b = append(b, f.Point...)
	b = append(b, " point"...)
	for _, fl := range f.Flags {
		b = append(b, ", "...)
		b = append(b, fl...)
	}
	if f.VLAN >= 0 {
		b = append(b, ", VLAN tag "...)
		b = strconv.AppendInt(b, int64(f.VLAN), 10)
	}
	if f.CapLength > 0 {
		b = append(b, ", capture length "...)
		b = strconv.AppendInt(b, int64(f.CapLength), 10)
		b = append(b, " of "...)
	} else {
		b = append(b, ", length "...)
	}
	b = strconv.AppendInt(b, int64(f.Length), 10)
	if !lay.NoHeaderPeriod {
		b = append(b, '.')
	}
	b = append(b, '\n')

	segs := lay.Segments
	if len(segs) == 0 && (len(f.Data) > 0 || f.SegmentSize > 0) {
		size := f.SegmentSize
		if size == 0 {
			size = len(f.Data)
			if st.SegmentBuffer > 0 && size <= st.SegmentBuffer {
				size = st.SegmentBuffer
			}
		}
		segs = []Segment{{Size: size, Len: len(f.Data)}}
	}
	data := f.Data
	for i, sg := range segs {
		b = append(b, lay.SegmentIndent...)
		b = append(b, "Segment["...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "] ---- "...)
		b = strconv.AppendInt(b, int64(sg.Size), 10)
		b = append(b, " bytes:\n"...)
		n := min(sg.Len, len(data))
		b = appendHex(b, data[:n], lay.HexIndent, lay.HexTrailingSpace)
		data = data[n:]
	}

	if f.Trace != nil {
		if lay.TraceBlankLines {
			b = append(b, '\n')
		}
		b = append(b, lay.PathIndent...)
		b = append(b, "PATH:\n"...)
		for _, h := range f.Trace {
			if lay.TraceBlankLines {
				b = append(b, '\n')
			}
			b = append(b, lay.HopIndent...)
			b = append(b, "+- ["...)
			b = appendClock(b, h.TimeOfDay)
			b = append(b, "] | "...)
			b = append(b, h.Point...)
			b = append(b, '\n')
		}
	}
	cw.buf = b
	return cw.flush()
}

const hexDigits = "0123456789abcdef"

// appendHexOffset appends off as at least four lower-case hex digits.
func appendHexOffset(b []byte, off int) []byte {
	digits := 4
	for off>>(4*digits) != 0 {
		digits++
	}
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		b = append(b, hexDigits[off>>shift&0xf])
	}
	return b
}

// appendHex appends hex lines of 16 bytes in 2-byte groups.
func appendHex(b, data []byte, indent string, trailing bool) []byte {
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		b = append(b, indent...)
		b = append(b, "0x"...)
		b = appendHexOffset(b, off)
		b = append(b, ": "...)
		for i, c := range line {
			if i%2 == 0 {
				b = append(b, ' ')
			}
			b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
		}
		if trailing {
			b = append(b, ' ')
		}
		b = append(b, '\n')
	}
	return b
}
