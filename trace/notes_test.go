package trace

import (
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/session"
)

// A point that stalled and dropped gets a note; one that stalled without
// dropping, or dropped without stalling, does not; a point still behind at
// the stop does, and so do frames out of order.
func TestNotes(t *testing.T) {
	res := &Result{Session: &session.Result{OutOfOrder: 3, Points: []session.PointStats{
		{Name: "esx02/vmnic2/rx", Stalls: 4, Stalled: 1234 * time.Millisecond, Dropped: 311},
		{Name: "esx02/vmnic3/rx", Stalls: 2, Stalled: time.Second, Dropped: 0},
		{Name: "esx02/7/PortOutput", Dropped: 9, Undrained: true},
		{Name: "esx02/7/VnicRx", Stalls: 1, Stalled: 20 * time.Millisecond, Dropped: -1},
	}}}
	got := Notes(res)
	want := []string{
		"capturectl's outputs held esx02/vmnic2/rx's stream 4 times (1.234s in all), so the 311 frames it dropped may be capturectl's doing",
		"capturectl's outputs held esx02/7/VnicRx's stream once (20ms in all), so the frames it may have dropped (its drop count is unknown)",
		"esx02/7/PortOutput's stream was still behind when the capture stopped",
		"3 frames of the pcapng are out of time order",
	}
	if len(got) != len(want) {
		t.Fatalf("notes %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("note %d: %q; want it to begin %q", i, got[i], want[i])
		}
	}
	if n := Notes(&Result{Session: &session.Result{}}); n != nil {
		t.Errorf("nothing to tell: %q", n)
	}
}
