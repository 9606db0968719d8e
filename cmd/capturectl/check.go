package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
)

// Scenario is a scripted lab check (configs/checks/*.yaml): which VM to
// trace, what traffic to send, what to change while it runs, and the
// verdicts expected.
type Scenario struct {
	Name string `yaml:"name"`
	// Lab is the topology (a file, or an embedded config name); --lab
	// overrides it.
	Lab      string              `yaml:"lab"`
	VM       string              `yaml:"vm"`
	NIC      int                 `yaml:"nic"`
	Duration time.Duration       `yaml:"duration"`
	Filters  map[string]string   `yaml:"filters"`
	Traffic  []lab.TrafficConfig `yaml:"traffic"`
	Actions  []Action            `yaml:"actions"`
	Expect   []Expectation       `yaml:"expect"`
}

// Action changes the lab during the trace.
type Action struct {
	At time.Duration `yaml:"at"`
	// SetTeamUplink moves a VM's port to another uplink (vm, uplink).
	SetTeamUplink *struct {
		VM     string `yaml:"vm"`
		Uplink string `yaml:"uplink"`
	} `yaml:"setTeamUplink"`
	// SetLink sets an uplink's link state (host, nic, up).
	SetLink *struct {
		Host string `yaml:"host"`
		NIC  string `yaml:"nic"`
		Up   bool   `yaml:"up"`
	} `yaml:"setLink"`
}

// Expectation is the verdict counts expected of one flow (Flow: a part of
// its description, e.g. "ICMP echo request 192.168.100.11 > 192.168.100.12")
// or of all frames (Flow empty). Counts map verdict IDs (delivered,
// filtered_reverse_teaming, ...) to an exact count or a {min, max} range.
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

func (r Range) ok(n int) bool { return n >= r.Min && (!r.HasMax || n <= r.Max) }

func loadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{err}
	}
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, usagef("%s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if s.VM == "" {
		return nil, usagef("%s: vm is required", path)
	}
	if s.Duration <= 0 {
		s.Duration = 3 * time.Second
	}
	if len(s.Expect) == 0 {
		return nil, usagef("%s: no expectations (expect: [...])", path)
	}
	ids := map[string]bool{}
	for _, v := range correlate.Verdicts() {
		ids[v.ID()] = true
	}
	for i, e := range s.Expect {
		for id := range e.Counts {
			if !ids[id] {
				return nil, usagef("%s: expect[%d]: unknown verdict %q (want one of the JSON ids in the README)", path, i, id)
			}
		}
	}
	return &s, nil
}

// checkResult is one compared expectation.
type checkResult struct {
	Scenario, Flow, Verdict string
	Want                    Range
	Got                     int
	Pass                    bool
}

func runCheck(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "check", "check [--lab FILE] [--junit FILE] SCENARIO.yaml...\n\n"+
		"Runs scripted checks on the embedded lab: starts the scenario's topology, sends its traffic,\n"+
		"traces its VM, and compares the verdicts with the expected counts. Exit code 1 when any\n"+
		"expectation fails.")
	labFile := fs.String("lab", "", "topology `file` (or embedded name) for every scenario, overriding their lab:")
	junit := fs.String("junit", "", "write JUnit XML to `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("check: no scenario files given")
	}
	var all []checkResult
	var failures []string
	for _, path := range fs.Args() {
		sc, err := loadScenario(path)
		if err != nil {
			return err
		}
		if *labFile != "" {
			sc.Lab = *labFile
		}
		res, err := runScenario(ctx, e, sc)
		if err != nil {
			return fmt.Errorf("check %s: %w", sc.Name, err)
		}
		all = append(all, res...)
		for _, r := range res {
			if !r.Pass {
				failures = append(failures, fmt.Sprintf("%s: %s: %s: got %d, want %s", r.Scenario, r.flowName(), r.Verdict, r.Got, r.Want))
			}
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "result\tscenario\tflow\tverdict\twant\tgot")
	for _, r := range all {
		mark := "PASS"
		if !r.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", mark, r.Scenario, r.flowName(), r.Verdict, r.Want, r.Got)
	}
	tw.Flush()
	if *junit != "" {
		if err := writeFileWith(*junit, func(w io.Writer) error { return writeCheckJUnit(w, all) }); err != nil {
			return err
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(e.stdout, "\n%d of %d expectations failed:\n  %s\n", len(failures), len(all), strings.Join(failures, "\n  "))
		return errCheckFailed
	}
	fmt.Fprintf(e.stdout, "\nall %d expectations passed\n", len(all))
	return nil
}

// errCheckFailed ends check with exit code 1 after its table was printed.
var errCheckFailed = errors.New("expectations failed")

func (r checkResult) flowName() string {
	if r.Flow == "" {
		return "(all frames)"
	}
	return r.Flow
}

// runScenario starts the scenario's lab, runs its traffic and actions, and
// traces its VM as a user would (trace --json against the lab).
func runScenario(ctx context.Context, e *env, sc *Scenario) ([]checkResult, error) {
	cfg, _, err := loadTopology(sc.Lab)
	if err != nil {
		return nil, err
	}
	ls, err := startLabSession(ctx, e, cfg, false)
	if err != nil {
		return nil, err
	}
	defer ls.close()
	l, kh := ls.lab, ls.knownHosts
	inner := *ls.env
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := time.Now()
	var actErr error
	var mu sync.Mutex
	for _, t := range sc.Traffic {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(500 * time.Millisecond) // once the capture runs
			for tctx.Err() == nil {
				switch t.Kind {
				case "ping":
					l.Net.Ping(tctx, t.From, t.To, 1, 0)
				case "udp":
					l.Net.Generate(tctx, lab.GenSpec{From: t.From, To: t.To, Rate: t.Rate, Size: t.Size})
				}
				iv := t.Interval
				if iv <= 0 {
					iv = time.Second
				}
				select {
				case <-tctx.Done():
				case <-time.After(iv):
				}
			}
		}()
	}
	for _, a := range sc.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-tctx.Done():
				return
			case <-time.After(a.At - time.Since(start)):
			}
			var err error
			switch {
			case a.SetTeamUplink != nil:
				var host string
				var port lab.PortInfo
				if host, port, err = l.Net.FindPort(a.SetTeamUplink.VM, 0); err == nil {
					err = l.Net.SetTeamUplink(host, port.PortID, a.SetTeamUplink.Uplink)
				}
			case a.SetLink != nil:
				err = l.Net.SetLink(a.SetLink.Host, a.SetLink.NIC, a.SetLink.Up)
			}
			if err != nil {
				mu.Lock()
				actErr = errors.Join(actErr, err)
				mu.Unlock()
			}
		}()
	}
	targs := []string{"--vm", sc.VM, "--nic", strconv.Itoa(sc.NIC), "--duration", sc.Duration.String(), "--known-hosts", kh, "--json", "--poll", "500ms"}
	keys := make([]string, 0, len(sc.Filters))
	for k := range sc.Filters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		targs = append(targs, "--"+k, sc.Filters[k])
	}
	var out bytes.Buffer
	inner.stdout = &out
	inner.stderr = io.Discard
	terr := runTrace(tctx, &inner, targs)
	cancel()
	wg.Wait()
	if actErr != nil {
		return nil, fmt.Errorf("action: %w", actErr)
	}
	if terr != nil && !errors.Is(terr, errFiltered) {
		return nil, terr
	}
	var rep struct {
		Totals map[string]int `json:"totals"`
		Flows  []struct {
			Description string         `json:"description"`
			Counts      map[string]int `json:"counts"`
		} `json:"flows"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("trace report: %w", err)
	}
	var res []checkResult
	for _, ex := range sc.Expect {
		got := map[string]int{}
		if ex.Flow == "" {
			got = rep.Totals
		} else {
			for _, f := range rep.Flows {
				if strings.Contains(f.Description, ex.Flow) {
					for k, v := range f.Counts {
						got[k] += v
					}
				}
			}
		}
		ids := make([]string, 0, len(ex.Counts))
		for id := range ex.Counts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			want := ex.Counts[id]
			res = append(res, checkResult{Scenario: sc.Name, Flow: ex.Flow, Verdict: id, Want: want, Got: got[id], Pass: want.ok(got[id])})
		}
	}
	return res, nil
}

func writeCheckJUnit(w io.Writer, results []checkResult) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := suite{Name: "capturectl check", Tests: len(results)}
	for _, r := range results {
		tc := testcase{Name: r.flowName() + ": " + r.Verdict, Classname: r.Scenario}
		if !r.Pass {
			s.Failures++
			tc.Failure = &failure{Message: fmt.Sprintf("got %d, want %s", r.Got, r.Want),
				Text: fmt.Sprintf("%s %s: %d frames with verdict %s; expected %s", r.Scenario, r.flowName(), r.Got, r.Verdict, r.Want)}
		}
		s.Cases = append(s.Cases, tc)
	}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
