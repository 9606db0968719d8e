// Package scenario is `capturectl check`: a scripted lab check read from
// YAML (configs/checks/*.yaml) — which VM to trace, what traffic to send,
// what to change while the trace runs, and the verdicts expected — and the
// runner that starts the lab, runs the traffic and the changes once every
// capture point is live, traces the VM with trace.Run as a user's trace
// would (discovery through the lab's vCenter, pktcap-uw over SSH), and
// compares the verdicts with the expectations.
//
// It does not render (the check command prints the table and JUnit).
package scenario

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
)

// Scenario is a scripted lab check.
type Scenario struct {
	Name string `yaml:"name"`
	// Lab is the topology (a file, or an embedded config name); the
	// caller resolves it.
	Lab string `yaml:"lab"`
	VM  string `yaml:"vm"`
	// From, when set, is the sender of a whole-path trace (trace --vm VM
	// --from FROM): a VM, or an address outside the inventory. The
	// expectations then count path verdicts (lost_in_network, not_sent,
	// ...) of the path's flows.
	From     string              `yaml:"from"`
	NIC      int                 `yaml:"nic"`
	Duration time.Duration       `yaml:"duration"`
	Filters  map[string]string   `yaml:"filters"`
	Traffic  []lab.TrafficConfig `yaml:"traffic"`
	Actions  []Action            `yaml:"actions"`
	Expect   []Expectation       `yaml:"expect"`

	file   string
	filter pktcap.Filter
}

// Action changes the lab during the trace, At after every capture point
// is live.
type Action struct {
	At time.Duration `yaml:"at"`
	// SetTeamUplink moves a VM's port to another uplink (vm, uplink).
	SetTeamUplink *SetTeamUplink `yaml:"setTeamUplink"`
	// SetLink sets an uplink's link state (host, nic, up).
	SetLink *SetLink `yaml:"setLink"`
	// SetClock steps or re-rates a host's clock (host, offset, drift).
	SetClock *SetClock `yaml:"setClock"`
	// SetManagementLink changes a host's management link (host, latency,
	// jitter, bandwidth).
	SetManagementLink *SetManagementLink `yaml:"setManagementLink"`
	// SetLoss sets a physical switch port's loss (port, loss).
	SetLoss *SetLoss `yaml:"setLoss"`
	// DropBurst makes every capture on a host drop for a while (host,
	// length).
	DropBurst *DropBurst `yaml:"dropBurst"`
}

// SetClock sets a host's clock from the action on: offset against the
// lab's clock (omitted: it keeps reading what it reads) and drift
// (omitted: unchanged).
type SetClock struct {
	Host   string         `yaml:"host"`
	Offset *time.Duration `yaml:"offset"`
	Drift  *lab.PPM       `yaml:"drift"`
}

// SetManagementLink replaces a host's management link (all of it: a field
// left out is none).
type SetManagementLink struct {
	Host           string `yaml:"host"`
	lab.LinkConfig `yaml:",inline"`
}

// SetLoss sets the loss of a physical switch port.
type SetLoss struct {
	Port string  `yaml:"port"`
	Loss float64 `yaml:"loss"`
}

// DropBurst is a drop burst on a host's captures.
type DropBurst struct {
	Host   string        `yaml:"host"`
	Length time.Duration `yaml:"length"`
}

// SetTeamUplink moves the team uplink of a VM's first vNIC.
type SetTeamUplink struct {
	VM     string `yaml:"vm"`
	Uplink string `yaml:"uplink"`
}

// SetLink sets a host uplink's link state.
type SetLink struct {
	Host string `yaml:"host"`
	NIC  string `yaml:"nic"`
	Up   bool   `yaml:"up"`
}

// Expectation is the verdict counts expected of one flow (Flow: a part of
// its description, e.g. "ICMP echo request 192.168.100.11 > 192.168.100.12")
// or of all frames (Flow empty). Counts map verdict IDs (delivered,
// filtered_reverse_teaming, ...) to an exact count or a {min, max} range.
// An expectation of a flow that never appeared fails, whatever it counts.
type Expectation struct {
	Flow   string           `yaml:"flow"`
	Counts map[string]Range `yaml:"counts"`
}

// Range is an exact count ("3") or a range ({min: 2}, {min: 1, max: 5}).
type Range struct {
	Min, Max int
	HasMax   bool
}

// UnmarshalYAML reads a number or {min, max}.
func (r *Range) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v, err := strconv.Atoi(n.Value)
		if err != nil || v < 0 {
			return fmt.Errorf("line %d: want a count or {min: N, max: M}, got %q", n.Line, n.Value)
		}
		*r = Range{Min: v, Max: v, HasMax: true}
		return nil
	}
	var m struct {
		Min *int `yaml:"min"`
		Max *int `yaml:"max"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	if m.Min == nil && m.Max == nil {
		return fmt.Errorf("line %d: a range needs min or max", n.Line)
	}
	if m.Min != nil {
		r.Min = *m.Min
	}
	if m.Max != nil {
		r.Max, r.HasMax = *m.Max, true
	}
	if r.Min < 0 || (r.HasMax && r.Max < r.Min) {
		return fmt.Errorf("line %d: range {min: %d, max: %d}: want 0 <= min <= max", n.Line, r.Min, r.Max)
	}
	return nil
}

func (r Range) String() string {
	switch {
	case r.HasMax && r.Min == r.Max:
		return strconv.Itoa(r.Min)
	case r.HasMax:
		return fmt.Sprintf("%d to %d", r.Min, r.Max)
	default:
		return fmt.Sprintf("at least %d", r.Min)
	}
}

// Contains reports whether n is in the range.
func (r Range) Contains(n int) bool { return n >= r.Min && (!r.HasMax || n <= r.Max) }

// Load reads and validates a scenario file. Every error is in what the
// file says, and names the file (and the line where yaml knows it).
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// yamlType is the Go type yaml's errors name ("in type scenario.Scenario"),
// which tells a user nothing.
var yamlType = regexp.MustCompile(` in type [A-Za-z0-9_.\[\]*]+`)

// Parse reads and validates a scenario; file names it in errors and
// gives its name when the scenario has none.
func Parse(data []byte, file string) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		msg := yamlType.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")
		return nil, fmt.Errorf("%s: %s", file, msg)
	}
	if len(s.Expect) == 0 {
		return nil, fmt.Errorf("%s: no expectations (expect: [...])", file)
	}
	if err := s.Validate(file); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks a scenario built in Go (Parse checks a file's) and fills
// in its defaults; file names it in errors. Unlike Parse it takes a
// scenario without expectations: one that is only traced (Trace).
func (s *Scenario) Validate(file string) error {
	s.file = file
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", file, fmt.Sprintf(format, args...))
	}
	switch {
	case s.VM == "":
		return errf("vm is required")
	case s.From != "" && s.From == s.VM:
		return errf("from names the traced VM %s: want the sender, another VM or an address", s.VM)
	case s.NIC < 0:
		return errf("nic %d: want 0 or more", s.NIC)
	case s.Duration < 0:
		return errf("duration %v: want a positive duration", s.Duration)
	}
	if s.Duration == 0 {
		s.Duration = 3 * time.Second
	}
	var err error
	if s.filter, err = pktcap.ParseFilter(s.Filters); err != nil {
		return errf("filters: %v", err)
	}
	ids := map[string]bool{}
	for _, v := range correlate.Verdicts() {
		if s.From == "" {
			ids[v.ID()] = true
		}
	}
	for _, v := range correlate.PathVerdicts() {
		if s.From != "" {
			ids[v.ID()] = true
		}
	}
	for i, e := range s.Expect {
		if len(e.Counts) == 0 {
			return errf("expect[%d]: no counts (counts: {VERDICT: N})", i)
		}
		for id := range e.Counts {
			if !ids[id] {
				if s.From != "" {
					return errf("expect[%d]: unknown path verdict %q (with from: want one of %s)", i, id, pathIDs())
				}
				return errf("expect[%d]: unknown verdict %q (want one of the JSON ids in the README)", i, id)
			}
		}
	}
	for i, a := range s.Actions {
		n := 0
		for _, set := range []bool{a.SetTeamUplink != nil, a.SetLink != nil, a.SetClock != nil, a.SetManagementLink != nil,
			a.SetLoss != nil, a.DropBurst != nil} {
			if set {
				n++
			}
		}
		switch {
		case n != 1:
			return errf("actions[%d]: want exactly one of setTeamUplink, setLink, setClock, setManagementLink, setLoss, dropBurst", i)
		case a.SetClock != nil && a.SetClock.Offset == nil && a.SetClock.Drift == nil:
			return errf("actions[%d]: setClock changes nothing (want offset, drift or both)", i)
		case a.SetLoss != nil && (a.SetLoss.Loss < 0 || a.SetLoss.Loss > 1):
			return errf("actions[%d]: setLoss: loss %v: want a fraction from 0 to 1", i, a.SetLoss.Loss)
		case a.DropBurst != nil && a.DropBurst.Length <= 0:
			return errf("actions[%d]: dropBurst: want a positive length", i)
		case a.At < 0 || a.At >= s.Duration:
			return errf("actions[%d]: at %v: want a time within the duration (0 to %v)", i, a.At, s.Duration)
		}
	}
	return nil
}

func pathIDs() string {
	var ids []string
	for _, v := range correlate.PathVerdicts() {
		ids = append(ids, v.ID())
	}
	return strings.Join(ids, ", ")
}
