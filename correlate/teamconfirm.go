package correlate

import (
	"fmt"
	"math"
	"time"
)

// Team uplink confirmations. A poll of the port's team uplink says what it
// was when the host answered, nothing about the time since the poll
// before: a change made and noticed only at the next poll, or one made
// after the last poll of a run, leaves the frames of that time judged
// against the wrong uplink. So when polls are tracked (TrackTeam), a
// verdict that rests on which uplink was the team uplink — filtered by
// reverse teaming, dropped after PortOutput, duplicates removed after a
// local port's broadcast came back — for a frame later than the last poll
// that confirmed the uplink is provisional: it joins the open epoch, which
// the next poll confirms (the same uplink, and no frame of the epoch later
// than the poll) or fails (another uplink: the change happened somewhere
// after the last confirmation, where every such verdict was judged
// against the old one). At Close an epoch not confirmed makes its verdicts
// inconclusive, as a point's drops do (Result.Settle, the flows' counts).
//
// What polling cannot see is a change undone between two polls that both
// saw the same uplink; a shorter poll interval narrows it.

// epochState is what became of an epoch.
type epochState struct {
	confirmed bool
	doomed    bool   // a frame contradicted the team uplink: no poll confirms it
	why       string // when not confirmed
}

// TrackTeam says the team uplink will be confirmed by polls
// (ConfirmTeamUplink): the uplink the Correlator was given was read at at
// (host clock), and holds for frames after it only once a poll confirms it.
// A zero at: the uplink was never confirmed; the first poll confirms it
// or finds a change before it.
func (c *Correlator) TrackTeam(at time.Time) {
	c.teamTracked = true
	c.confirmedNS = math.MinInt64
	if !at.IsZero() {
		c.confirmedNS = at.UnixNano()
	}
}

// confirmedAt is the last confirmation (host clock), zero when none.
func (c *Correlator) confirmedAt() time.Time {
	if c.confirmedNS == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, c.confirmedNS).UTC()
}

// since says "between T and U" or, never confirmed, "before U".
func since(after, until time.Time) string {
	if after.IsZero() {
		return "before " + until.UTC().Format("15:04:05.000")
	}
	return fmt.Sprintf("between %s and %s", after.UTC().Format("15:04:05.000"), until.UTC().Format("15:04:05.000"))
}

// ConfirmTeamUplink records a poll of the team uplink: the host answered
// uplink at some time after at (host clock). A different uplink than the
// current one is a change somewhere after the last confirmation, recorded
// as SetTeamUplinkBetween would, up to until (the poll's answer, host
// clock).
//
// The answer takes effect once every frame before at has been judged (the
// merge runs behind the polls): a frame of that time that contradicts the
// uplink (teamContradicted) still counts against the interval it
// confirms.
func (c *Correlator) ConfirmTeamUplink(at, until time.Time, uplink, source string) {
	if !c.teamTracked || uplink == "" {
		return
	}
	c.polls = append(c.polls, teamPoll{at, until, uplink, source})
}

// teamPoll is a poll's answer waiting for the frames before it (ConfirmTeamUplink).
type teamPoll struct {
	at, until      time.Time
	uplink, source string
}

// applyPolls applies the answers of polls earlier than ns (all, with
// math.MaxInt64), in order.
func (c *Correlator) applyPolls(ns int64) {
	for len(c.polls) > 0 && c.polls[0].at.UnixNano() < ns {
		p := c.polls[0]
		c.polls = c.polls[1:]
		c.applyPoll(p.at, p.until, p.uplink, p.source)
	}
}

func (c *Correlator) applyPoll(at, until time.Time, uplink, source string) {
	ns := at.UnixNano()
	if n := len(c.timeline); n == 0 || c.timeline[n-1].Uplink != uplink {
		after := c.confirmedAt()
		// never confirmed: the change may have come at any time before
		span := after
		if span.IsZero() {
			span = time.Unix(0, 1)
		}
		c.SetTeamUplinkBetween(span, until, uplink, source)
		if c.epoch != 0 {
			c.epochs[c.epoch-1].why = fmt.Sprintf("the team uplink changed to %s %s; this was judged against the one before",
				uplink, since(after, until))
			c.epoch = 0
		}
		c.confirmedNS = max(c.confirmedNS, until.UnixNano())
		return
	}
	c.confirmedNS = max(c.confirmedNS, ns)
	if c.epoch != 0 && c.epochMax <= ns {
		c.epochs[c.epoch-1].confirmed = !c.epochs[c.epoch-1].doomed
		c.epoch = 0
	}
}

// teamContradicted records a frame that arrived on one uplink alone, not
// the team uplink, and was delivered: that uplink acted as the team uplink
// then, so the uplink the polls report did not hold throughout — a change
// and its undoing between two polls that both saw the old one. Every
// verdict that rests on the team uplink and is not yet confirmed, up to
// the next poll, becomes inconclusive. (It may also be the team uplink's
// capture that missed the copy; then this only costs verdicts.)
func (c *Correlator) teamContradicted(inst *Instance) {
	if !c.teamTracked || inst.lastNS <= c.confirmedNS {
		return
	}
	e := &c.epochs[c.openEpoch(inst)-1]
	if !e.doomed {
		e.doomed = true
		e.why = fmt.Sprintf("a frame at %s that arrived only on %s was delivered, so %s acted as the team uplink then, not %s as the polls said",
			inst.First.Format("15:04:05.000000"), inst.Arrivals[0], inst.Arrivals[0], inst.Team)
	}
}

// teamEpoch puts a verdict that rests on the team uplink, judged for a
// frame later than the last confirmation, into the open epoch.
func (c *Correlator) teamEpoch(inst *Instance) {
	if !c.teamTracked || inst.lastNS <= c.confirmedNS {
		return
	}
	inst.epoch = c.openEpoch(inst)
}

// openEpoch returns the open epoch, opening one if none is, with inst in
// it.
func (c *Correlator) openEpoch(inst *Instance) int32 {
	if c.epoch == 0 {
		c.epochs = append(c.epochs, epochState{})
		c.epoch = int32(len(c.epochs))
	}
	c.epochMax = max(c.epochMax, inst.lastNS)
	return c.epoch
}

// closeEpochs applies the polls left and fails the epoch left open at
// Close.
func (c *Correlator) closeEpochs() {
	c.applyPolls(math.MaxInt64)
	if c.epoch != 0 && !c.epochs[c.epoch-1].doomed {
		why := "no poll confirmed the team uplink %s"
		if at := c.confirmedAt(); !at.IsZero() {
			why += " after " + at.Format("15:04:05.000")
		}
		c.epochs[c.epoch-1].why = fmt.Sprintf(why+", and this was judged against it (the trace ended, or a poll failed, before another)",
			c.teamUplinkAt(time.Unix(0, c.epochMax)))
	}
	c.epoch = 0
}

// unconfirmed reports whether epoch e (0: none) was not confirmed, and why.
func unconfirmed(epochs []epochState, e int32) (string, bool) {
	if e == 0 || int(e) > len(epochs) || epochs[e-1].confirmed {
		return "", false
	}
	return epochs[e-1].why, true
}
