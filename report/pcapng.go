package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// The words of the verdict comments capturectl writes on a pcapng's
// packets (what Wireshark shows as frame.comment, pkt_comment before 3.6):
// trace's trace.pcapng gets them once the trace is over (PcapngNotes), the
// live stream of capturectl extcap as each frame is written (LiveComment,
// PendingComment).

// VerdictComment is the comment for a frame of instance i: "capturectl: "
// then the verdict as judged and its reason ("capturectl: filtered by
// reverse teaming: filtered by reverse teaming: arrived on vmnic3, team
// uplink is vmnic2").
func VerdictComment(i *correlate.Instance) string {
	return "capturectl: " + i.Verdict.String() + ": " + i.Reason()
}

// provisionalLive ends the live comment of a verdict that rests on what
// is known only later: pktcap-uw's drop counts (at the stop) or a poll of
// the team uplink after the frame.
const provisionalLive = " (provisional: it holds unless a capture point it rests on reports drops when the capture stops, " +
	"or the next poll of the team uplink disagrees)"

// LiveComment is VerdictComment for a frame written while the capture
// runs: a verdict that a point's drops or the next team-uplink poll could
// still make inconclusive says so (correlate.Instance.Evidence: most do,
// even delivered, which two points' drops together would undo); one that
// rests on neither is final as it stands.
func LiveComment(i *correlate.Instance) string {
	if i.Evidence() != (correlate.Evidence{}) && i.Verdict != correlate.Inconclusive {
		return VerdictComment(i) + provisionalLive
	}
	return VerdictComment(i)
}

// PendingComment is the comment of a frame the live stream wrote before
// capturectl had judged it: it waited wait, the stream's bound, or the
// memory held reached its bound.
func PendingComment(wait time.Duration) string {
	return fmt.Sprintf("capturectl: verdict not known yet when the frame was written (the live stream waits at most %v "+
		"for a frame's verdict); capturectl trace --out writes every frame's", wait)
}

// settledComment is the comment of a frame whose verdict, as judged, did
// not hold once the trace was over (correlate.Result.Settle).
func settledComment(text string) string {
	return "capturectl: inconclusive: judged as " + strings.TrimPrefix(text, "capturectl: ") +
		"; but a capture point it rests on dropped frames, reported no drop count or fell behind, or no poll confirmed the team uplink (see the report)"
}

// PcapngNotes keeps each sighting's verdict as a packet comment for the
// capture's pcapng (what Wireshark shows as frame.comment): feed it every
// judged instance (trace.Config.OnInstance), then Annotate the file. It
// keeps at most MaxNotes sightings; later ones get no comment.
type PcapngNotes struct {
	m map[noteKey]*note
}

type noteKey struct {
	point int
	at    int64
}

// note is an instance's verdict as judged, what it rests on, and its
// comment.
type note struct {
	text     string
	verdict  correlate.Verdict
	evidence correlate.Evidence
}

// MaxNotes bounds the sightings a PcapngNotes keeps (about 100 MB).
const MaxNotes = 2_000_000

// NewPcapngNotes returns an empty set of notes.
func NewPcapngNotes() *PcapngNotes { return &PcapngNotes{m: map[noteKey]*note{}} }

// Add records the verdict of every sighting of i. Not safe for concurrent
// use (trace calls OnInstance one call at a time).
func (n *PcapngNotes) Add(i *correlate.Instance) {
	if len(n.m) >= MaxNotes {
		return
	}
	nt := &note{text: VerdictComment(i), verdict: i.Verdict, evidence: i.Evidence()}
	for _, s := range i.Sightings {
		n.m[noteKey{s.Point, s.Time.UnixNano()}] = nt
	}
}

// Annotate copies the pcapng (or pcap) src to dst as a pcapng with each
// packet's verdict as a packet comment, keeping its interfaces and their
// statistics. Each verdict is the one res settles (correlate.Result.Settle):
// one judged while the trace ran that a point's drops or an unconfirmed
// team uplink leave unproven says "inconclusive", and what it was judged.
// A capture without packets is copied as nothing (dst gets no bytes; the
// caller keeps src).
func (n *PcapngNotes) Annotate(dst io.Writer, src io.Reader, res *correlate.Result) (packets int, err error) {
	r, err := pktcap.NewCaptureReader(bufio.NewReaderSize(src, 1<<20))
	if err != nil {
		return 0, err
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
		if nt := n.m[noteKey{p.Interface, p.Time.UnixNano()}]; nt != nil {
			text := nt.text
			if res != nil && res.Settle(nt.verdict, nt.evidence) != nt.verdict {
				text = settledComment(text)
			}
			comments = append(comments, text)
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
