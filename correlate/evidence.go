package correlate

// What an instance's verdict rests on, for callers that keep instances
// past OnInstance (the ground-truth oracle): the verdict an instance has
// when judged may still turn inconclusive once the points' drop counts are
// known (Close), and Evidence says whether it does.

// Evidence is what a judged instance's verdict rests on: the capture
// points whose drops would leave it unproven.
type Evidence struct {
	mask  uint64
	pair  [2]uint64
	epoch int32 // the team-uplink epoch (teamconfirm.go)
}

// Evidence returns what the instance's verdict rests on (valid after the
// instance was judged; it is a value, so it may be kept).
func (i *Instance) Evidence() Evidence { return Evidence{i.mask, i.pair, i.epoch} }

// Head returns a copy of the instance's first HeadLen bytes (fewer for a
// shorter frame).
func (i *Instance) Head() []byte { return append([]byte(nil), i.hdr[:i.hdrLen]...) }

// Settle is the verdict v (an instance's as judged, with its Evidence e)
// once r's drop counts are applied, as Close applies them to the counts:
// Inconclusive when a point it rests on dropped frames, reported no drop
// count or fell behind (PointStats.Late), or when it rests on a team
// uplink no poll confirmed (TrackTeam), v otherwise.
func (r *Result) Settle(v Verdict, e Evidence) Verdict {
	var dropped uint64
	for i, p := range r.Points {
		if p.Dropped > 0 || p.DropsUnknown || p.Late > 0 {
			dropped |= 1 << i
		}
	}
	if _, no := unconfirmed(r.epochs, e.epoch); no || missed(dropped, e.mask, e.pair) != 0 {
		return Inconclusive
	}
	return v
}
