package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/scenario"
)

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
	var scs []*scenario.Scenario
	var topos []*lab.Config
	for _, path := range fs.Args() { // every file is read before any lab starts
		sc, err := scenario.Load(path)
		if err != nil {
			return &usageError{err}
		}
		if *labFile != "" {
			sc.Lab = *labFile
		}
		cfg, _, err := loadTopology(sc.Lab)
		if err != nil {
			return err
		}
		scs, topos = append(scs, sc), append(topos, cfg)
	}
	var all []scenario.Result
	var failures []string
	ran := map[string]ranAt{}
	for i, sc := range scs {
		start := time.Now()
		res, err := scenario.Run(ctx, sc, topos[i], scenario.Options{})
		ran[sc.Name] = ranAt{start, time.Since(start)}
		if err != nil {
			return fmt.Errorf("check %s: %w", sc.Name, err)
		}
		all = append(all, res...)
		for _, r := range res {
			if !r.Pass {
				msg := fmt.Sprintf("%s: %s: %s: got %d, want %s", r.Scenario, r.FlowName(), r.Verdict, r.Got, r.Want)
				if r.Note != "" {
					msg += " (" + r.Note + ")"
				}
				failures = append(failures, msg)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", mark, r.Scenario, r.FlowName(), r.Verdict, r.Want, r.Got)
	}
	tw.Flush()
	if *junit != "" {
		if err := writeAtomic(*junit, func(w io.Writer) error { return writeCheckJUnit(w, ran, all) }); err != nil {
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

// ranAt is when a scenario started and how long it ran.
type ranAt struct {
	start time.Time
	took  time.Duration
}

// writeCheckJUnit writes one JUnit suite per scenario (stamped with when it
// ran and how long it took), one case per expectation.
func writeCheckJUnit(w io.Writer, ran map[string]ranAt, results []scenario.Result) error {
	var suites []report.JUnitSuite
	hostname, _ := os.Hostname()
	for _, r := range results {
		if len(suites) == 0 || suites[len(suites)-1].Name != r.Scenario {
			suites = append(suites, report.JUnitSuite{Name: r.Scenario, Package: "capturectl.check",
				Timestamp: ran[r.Scenario].start, Time: ran[r.Scenario].took, Hostname: hostname})
		}
		c := report.JUnitCase{ClassName: r.Scenario, Name: r.FlowName() + ": " + r.Verdict}
		if !r.Pass {
			body := fmt.Sprintf("%s %s: %d frames with verdict %s; expected %s", r.Scenario, r.FlowName(), r.Got, r.Verdict, r.Want)
			if r.Note != "" {
				body += " (" + r.Note + ")"
			}
			c.Failure = &report.JUnitFailure{Message: fmt.Sprintf("got %d, want %s", r.Got, r.Want), Body: body}
		}
		s := &suites[len(suites)-1]
		s.Cases = append(s.Cases, c)
	}
	return report.JUnit(w, suites)
}
