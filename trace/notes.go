package trace

import (
	"fmt"
	"time"
)

// Notes says what the report should tell about capturectl's own part in
// the run: a point whose drops may be capturectl's doing (its outputs or
// the correlator held the point's stream, so pktcap-uw's buffer on the
// host filled: session.PointStats.Stalls), a point whose stream had not
// caught up at the stop (session.PointStats.Undrained), and pcapng frames
// written out of time order (session.Result.OutOfOrder). Nothing when there is nothing to
// tell.
func Notes(res *Result) []string {
	if res == nil || res.Session == nil {
		return nil
	}
	var notes []string
	for _, p := range res.Session.Points {
		if p.Stalls == 0 || p.Dropped == 0 {
			continue
		}
		drops := fmt.Sprintf("the %d frames it dropped", p.Dropped)
		if p.Dropped < 0 {
			drops = "the frames it may have dropped (its drop count is unknown)"
		}
		times := fmt.Sprintf("%d times", p.Stalls)
		if p.Stalls == 1 {
			times = "once"
		}
		notes = append(notes, fmt.Sprintf("capturectl's outputs held %s's stream %s (%v in all), so %s may be capturectl's doing: a slow disk, or a reader of the output that fell behind",
			p.Name, times, p.Stalled.Round(time.Millisecond), drops))
	}
	for _, p := range res.Session.Points {
		if p.Undrained {
			notes = append(notes, fmt.Sprintf("%s's stream was still behind when the capture stopped (a slow link or a busy host): what pktcap-uw held then may be lost uncounted, so the point counts as live only until its last frame, and frames after it are inconclusive there", p.Name))
		}
	}
	if n := res.Session.OutOfOrder; n > 0 {
		notes = append(notes, fmt.Sprintf("%d frames of the pcapng are out of time order: a point's stream fell more than a second behind the others", n))
	}
	return notes
}
