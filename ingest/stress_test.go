package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/internal/testenv"
)

// What a trace killed with -9 leaves at high rate: four points written as
// their streams' reads came in (bursts of random length, the uplinks
// denser than the port's points), no statistics, cut in the middle of a
// block. Read eight times over, as the run that panicked once in eight
// did, with and without a slow merge: each time the same as one plain
// sorted pass, no panic, no hang.
func TestPcapngKilledTraceRepeated(t *testing.T) {
	testenv.CheckGoroutines(t)
	us := time.Microsecond
	l := ngLayout{names: []string{"esx01/vmnic2/rx", "esx01/vmnic3/rx", "esx01/7/PortOutput", "esx01/7/VnicRx"},
		step: []time.Duration{10 * us, 10 * us, 20 * us, 40 * us}}
	rng := rand.New(rand.NewPCG(10, 7))
	next := make([]int, len(l.names))
	for total := 0; total < 60_000; {
		k := rng.IntN(len(l.names))
		n := 1 + rng.IntN(3*batchLen)
		l.chunks = append(l.chunks, chunk{k, next[k], next[k] + n})
		next[k] += n
		total += n
	}
	whole := l.build(t)
	data := whole[:len(whole)-23]
	s, err := Open([]Input{memInput("killed.pcapng", data, nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := correlate.Config{Port: correlate.Port{TeamUplink: "vmnic2", Policy: "srcport"}}
	want := reference(t, s, data, cfg)
	for run := range 8 {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			c := cfg
			if run%2 == 1 {
				c = slowMerge(cfg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := s.Correlate(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, got, want)
		})
	}
}
