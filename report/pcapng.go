package report

import (
	"bufio"
	"errors"
	"io"
	"os"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// PcapngNotes keeps each sighting's verdict as a packet comment for the
// capture's pcapng (what Wireshark shows as pkt_comment): feed it every
// judged instance (trace.Config.OnInstance), then Annotate the file. It
// keeps at most MaxNotes sightings; later ones get no comment.
type PcapngNotes struct {
	m map[noteKey]*string
}

type noteKey struct {
	point int
	at    int64
}

// MaxNotes bounds the sightings a PcapngNotes keeps (about 100 MB).
const MaxNotes = 2_000_000

// NewPcapngNotes returns an empty set of notes.
func NewPcapngNotes() *PcapngNotes { return &PcapngNotes{m: map[noteKey]*string{}} }

// Add records the verdict of every sighting of i. Not safe for concurrent
// use (trace calls OnInstance one call at a time).
func (n *PcapngNotes) Add(i *correlate.Instance) {
	if len(n.m) >= MaxNotes {
		return
	}
	text := "capturectl: " + i.Verdict.String() + ": " + i.Reason()
	for _, s := range i.Sightings {
		n.m[noteKey{s.Point, s.Time.UnixNano()}] = &text
	}
}

// Annotate copies the pcapng (or pcap) src to dst as a pcapng with each
// packet's verdict as a packet comment, keeping its interfaces and their
// statistics. When a point dropped frames, every comment says the verdict
// is provisional. A capture without packets is copied as nothing (dst gets
// no bytes; the caller keeps src).
func (n *PcapngNotes) Annotate(dst io.Writer, src io.Reader, res *correlate.Result) (packets int, err error) {
	r, err := pktcap.NewCaptureReader(bufio.NewReaderSize(src, 1<<20))
	if err != nil {
		return 0, err
	}
	suffix := ""
	for _, p := range res.Points {
		if p.Dropped > 0 || p.DropsUnknown {
			suffix = " (provisional: a capture point dropped frames or reported no drop count; see the report)"
		}
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	var w *pktcap.NgWriter
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return packets, err
		}
		if w == nil {
			// interfaces are known once the first packet was read
			if w, err = pktcap.NewNgWriter(bw, r.Interfaces()); err != nil {
				return packets, err
			}
		}
		var comments []string
		if c := n.m[noteKey{p.Interface, p.Time.UnixNano()}]; c != nil {
			comments = append(comments, *c+suffix)
		}
		if err := w.WritePacket(p.Interface, p.Time, p.Data, p.OrigLen, comments...); err != nil {
			return packets, err
		}
		packets++
	}
	if w == nil {
		return 0, nil
	}
	for i, intf := range r.Interfaces() {
		if intf.Stats != nil {
			w.SetStats(i, *intf.Stats)
		}
	}
	if err := w.Close(); err != nil {
		return packets, err
	}
	return packets, bw.Flush()
}

// errNoPackets: the capture holds no packet, so there is nothing to
// annotate and the file stays as it is.
var errNoPackets = errors.New("no packets")

// AnnotateFile rewrites the capture at path with each packet's verdict as
// a packet comment through replace, which must write a new file and put it
// in place of path only when its function succeeds (so the capture is
// never left half-written). A capture without packets is left as it is.
func (n *PcapngNotes) AnnotateFile(path string, res *correlate.Result, replace func(path string, write func(io.Writer) error) error) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	err = replace(path, func(w io.Writer) error {
		k, err := n.Annotate(w, in, res)
		if err == nil && k == 0 {
			return errNoPackets
		}
		return err
	})
	if errors.Is(err, errNoPackets) {
		return nil
	}
	return err
}
