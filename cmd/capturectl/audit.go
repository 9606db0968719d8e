package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/capturectl/capturectl/audit"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/internal/redact"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/trace"
)

// capturectl audit: inventory-wide checks for reverse-teaming blind spots
// (the checks are described in package audit's documentation and the
// README).
//
// Made to run unattended (cron, CI): it never prompts, uses colour only
// when stdout is a terminal (and NO_COLOR is unset), and its JSON is
// ordered the same way on every run; only "generated" (and the verify
// results, which are live traces) change between two runs of an unchanged
// inventory.
//
// Exit codes: 0 no findings; 1 findings (the report says which); 2 the
// audit could not run (bad flags or connection settings, vCenter
// unreachable, login failed, unknown --datacenter or --cluster, an output
// file not written). 2 is also the code of bad usage for every command.

// errFindings ends an audit that found something: exit code 1, with the
// count on stderr.
type errFindings struct {
	n   int
	sev map[string]int
}

func (e *errFindings) Error() string {
	var parts []string
	for _, s := range []string{audit.SeverityHigh, audit.SeverityMedium} {
		if e.sev[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", e.sev[s], s))
		}
	}
	w := "findings"
	if e.n == 1 {
		w = "finding"
	}
	return fmt.Sprintf("audit: %d %s (%s)", e.n, w, strings.Join(parts, ", "))
}

// auditCouldNotRun marks an audit that could not run. It is a usage error
// so that exitCode maps it to 2, the code audit documents for it (the
// finer codes of connection failures do not apply to audit).
func auditCouldNotRun(err error) error {
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, errSilent) {
		return err
	}
	// The audit package's own errors start "audit: " already.
	msg, _ := strings.CutPrefix(err.Error(), "audit: ")
	return &usageError{fmt.Errorf("audit: could not run: %s", msg)}
}

func runAudit(ctx context.Context, e *env, args []string) error {
	const usage = "audit [--datacenter DC] [--cluster C] [--json] [--junit FILE] [--prom FILE] [--parallel N] [--verify [--verify-duration D] [ssh flags]] [--url URL] [--thumbprint TP] [--insecure]\n\n" +
		"Checks every standard and distributed switch for reverse-teaming blind spots (promiscuous port\n" +
		"groups on non-LAG teaming with several active uplinks) and the teaming mistakes next to them.\n" +
		"Exit code: 0 no findings, 1 findings, 2 could not run (or bad usage).\n" +
		"User and password: GOVC_USERNAME, GOVC_PASSWORD (a value naming a file means its contents) or the URL's user:password."
	fset := newFlagSet(e, "audit", usage)
	dc := fset.String("datacenter", "", "audit only the hosts of this datacenter (`name`)")
	cluster := fset.String("cluster", "", "audit only the hosts of this cluster (`name`)")
	asJSON := fset.Bool("json", false, "write the JSON report ("+report.AuditSchemaVersion+") to stdout instead of the summary")
	junit := fset.String("junit", "", "also write JUnit XML to `file` (a test case per checked object, findings as failures)")
	prom := fset.String("prom", "", "also write Prometheus metrics to `file` (textfile collector format, written atomically; also written when the audit could not run)")
	parallel := fset.Int("parallel", 8, "analyse at most `N` hosts and switches, and run at most N verify traces, at once")
	verify := fset.Bool("verify", false, "trace each affected powered-on promiscuous VM for a short while (needs SSH to the hosts) to show what it does not receive")
	verifyDur := fset.Duration("verify-duration", 3*time.Second, "how long each --verify trace runs (`D`)")
	var conn vsphereFlags
	conn.register(fset)
	var sf sshFlags
	sf.register(fset)
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	switch {
	case fset.NArg() > 0:
		return usagef("audit: unexpected argument %q", fset.Arg(0))
	case *parallel < 1:
		return usagef("audit: --parallel %d: want 1 or more", *parallel)
	case *verifyDur <= 0:
		return usagef("audit: --verify-duration %s: want a positive duration", *verifyDur)
	}
	hostname, _ := os.Hostname()
	a := &report.Audit{Generated: time.Now(), Hostname: hostname, Result: audit.Result{Datacenter: *dc, Cluster: *cluster}, Checks: audit.Checks}
	failed := func(err error) error {
		if *prom != "" {
			a.Error = redact.Text(err.Error())
			if werr := writeAtomic(*prom, func(w io.Writer) error { return report.AuditPrometheus(w, a) }); werr != nil {
				err = errors.Join(err, fmt.Errorf("audit: write %s: %w", *prom, werr))
			}
		}
		return auditCouldNotRun(err)
	}

	c, err := conn.connect(ctx, e)
	if err != nil {
		return failed(err)
	}
	defer closeClient(ctx, c)
	res, err := audit.Run(ctx, c.Vim(), audit.Options{Datacenter: *dc, Cluster: *cluster, Parallel: *parallel})
	if err != nil {
		return failed(err)
	}
	a.Result = *res
	if *verify {
		a.VerifyDuration = *verifyDur
		a.Verify = verifyFindings(ctx, e, c, &sf, res, *verifyDur, *parallel)
	}

	if *junit != "" {
		if err := writeAtomic(*junit, func(w io.Writer) error { return report.AuditJUnit(w, a) }); err != nil {
			return failed(fmt.Errorf("write %s: %w", *junit, err))
		}
	}
	if *prom != "" {
		if err := writeAtomic(*prom, func(w io.Writer) error { return report.AuditPrometheus(w, a) }); err != nil {
			return auditCouldNotRun(fmt.Errorf("write %s: %w", *prom, err))
		}
	}
	if *asJSON {
		err = report.AuditJSON(e.stdout, a)
	} else {
		err = report.AuditText(e.stdout, a, useColor(e))
	}
	if err != nil {
		return auditCouldNotRun(err)
	}
	if len(a.Findings) > 0 {
		return &errFindings{n: len(a.Findings), sev: a.Severities()}
	}
	return nil
}

// useColor: ANSI colour only on a terminal, and never with NO_COLOR set
// or TERM=dumb.
func useColor(e *env) bool {
	return isTerminal(e.stdout) && e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb"
}

// verifyFindings traces every powered-on promiscuous VM named by a
// finding (RT001, RT004) for d, over the audit's vSphere session and with
// the SSH flags given to audit: the vNICs of one host in one run that
// captures its uplinks once for all of them (trace.RunBatches), at most
// parallel runs at once. Results are in finding order.
func verifyFindings(ctx context.Context, e *env, client *esxi.Client, sf *sshFlags, res *audit.Result, d time.Duration, parallel int) []report.AuditVerify {
	sf.api = client // SSH failures explained, --enable-ssh
	var out []report.AuditVerify
	var chosen []trace.Chosen
	var at []int // chosen[i] is out[at[i]]
	seen := map[string]bool{}
	for _, f := range res.Findings {
		if f.ID != audit.FindingBlindSpot && f.ID != audit.FindingMonitorOneUplink {
			continue
		}
		for _, vm := range f.VMs {
			key := vm.Ref + "/" + strconv.Itoa(vm.NICIndex)
			if vm.PowerState != "poweredOn" || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, report.AuditVerify{Finding: f.ID, Path: f.Path, VM: vm.Name, Host: vm.Host})
			c, err := trace.Choose(ctx, client, []string{"VirtualMachine:" + vm.Ref}, vm.NICIndex, "")
			if err != nil {
				out[len(out)-1].Error = fmt.Sprintf("trace --vm VirtualMachine:%s: %v", vm.Ref, err)
				continue
			}
			chosen, at = append(chosen, c[0]), append(at, len(out)-1)
		}
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cf := captureFlags{ssh: *sf}
	opts := func(ts []esxi.Target) (session.Options, error) { return cf.options(e, ts, logger) }
	started := func(batch []trace.Chosen) {
		fmt.Fprintf(e.stderr, "capturectl: audit --verify: tracing %s for %s\n", report.TargetsLine(trace.Targets(batch)), d)
	}
	for i, o := range trace.RunBatches(ctx, client, chosen, session.Plan{Duration: d}, parallel, opts, started) {
		v := &out[at[i]]
		if o.Err != nil {
			v.Error = redact.Text(fmt.Sprintf("trace --vm %s: %v", chosen[i].Query, o.Err))
			continue
		}
		report.VerifyAuditVM(v, o.Correlation)
	}
	return out
}
