// Package correlate follows frames across pktcap-uw capture points and says
// where each stopped for the traced VM port: delivered; delivered with the
// duplicates removed by reverse teaming; filtered by reverse teaming (naming
// the arrival and the team uplink); not forwarded to this port; dropped
// after PortOutput for another reason; local; or inconclusive, with the
// reason.
//
// It is pure and streaming: observations go in (in time order — Merger
// orders live streams with a lateness bound), judged instances and per-flow
// counts come out, and memory is bounded by the grouping window times the
// frame rate, not by the capture length. It does no I/O and knows nothing
// of SSH or vSphere. Frames can be keyed where they are read
// ([Correlator.Keyer] is safe for concurrent use) and added with
// [Correlator.AddKeyed], so the goroutine that correlates only matches them.
//
// A frame instance is the set of sightings of the same bytes (VLAN tags
// removed, so uplink and PortOutput copies match VnicRx ones) within the
// window; the same bytes later are a new instance. Verdicts are given only
// inside the common live window of all points, and a verdict that rests on
// a point not seeing a frame becomes inconclusive when that point reported
// drops: the tool never claims "filtered" on a capture that lost frames.
package correlate
