package correlate

import (
	"math/rand/v2"
	"testing"
)

// The table behaves as a map under random puts, gets and deletes, with
// keys crowded into few home slots so that probing and back-shifting are
// exercised.
func TestInstTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tab instTable
	ref := map[Key]*Instance{}
	var keys []Key
	for op := range 200000 {
		switch r := rng.IntN(10); {
		case r < 4 || len(keys) == 0:
			k := Key(rng.Uint64N(4096) << (rng.UintN(3) * 20)) // many keys share low bits
			if _, ok := ref[k]; ok {
				continue
			}
			inst := &Instance{}
			tab.put(k, inst)
			ref[k] = inst
			keys = append(keys, k)
		case r < 7:
			i := rng.IntN(len(keys))
			k := keys[i]
			tab.del(k)
			delete(ref, k)
			keys[i] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
		default:
			k := keys[rng.IntN(len(keys))]
			if tab.get(k) != ref[k] {
				t.Fatalf("op %d: get(%x) differs from the map", op, k)
			}
		}
		if tab.len() != len(ref) {
			t.Fatalf("op %d: %d entries; the map has %d", op, tab.len(), len(ref))
		}
	}
	for _, k := range keys {
		if tab.get(k) != ref[k] {
			t.Fatalf("get(%x) differs from the map", k)
		}
	}
	if tab.get(Key(1)<<63) != nil {
		t.Fatal("found a key never put")
	}
}
