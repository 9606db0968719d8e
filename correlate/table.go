package correlate

// instTable maps keys to pending instances: open addressing with linear
// probing over a power-of-two array, indexed by the key's low bits (keys
// are already hashes). It holds only the instances of one window, so it
// stays small and in cache; deletion shifts entries back, keeping probes
// short without tombstones.
type instTable struct {
	slots []instSlot
	n     int
}

type instSlot struct {
	key  Key
	inst *Instance // nil: empty
}

func (t *instTable) get(k Key) *Instance {
	if len(t.slots) == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := uint64(k) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.inst == nil {
			return nil
		}
		if s.key == k {
			return s.inst
		}
	}
}

// put adds k, which must not be in the table.
func (t *instTable) put(k Key, inst *Instance) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	i := uint64(k) & mask
	for t.slots[i].inst != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = instSlot{k, inst}
	t.n++
}

func (t *instTable) del(k Key) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := uint64(k) & mask
	for {
		s := &t.slots[i]
		if s.inst == nil {
			return
		}
		if s.key == k {
			break
		}
		i = (i + 1) & mask
	}
	// shift back the entries after i whose home slot is not in (i, j]
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := t.slots[j]
		if s.inst == nil {
			break
		}
		home := uint64(s.key) & mask
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = instSlot{}
	t.n--
}

func (t *instTable) grow() {
	old := t.slots
	t.slots = make([]instSlot, max(64, 2*len(old)))
	t.n = 0
	for _, s := range old {
		if s.inst != nil {
			t.put(s.key, s.inst)
		}
	}
}

func (t *instTable) len() int { return t.n }
