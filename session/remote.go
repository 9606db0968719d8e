package session

// The shell text capturectl runs on a host. Every command here is written
// for busybox ash as ESXi ships it (1.29, no bash, ESXi's own ps) and must
// also run in Debian's busybox ash (1.35: busybox ps, another timeout
// syntax), so it uses only: $$, $(...), [ ], while, if, ( ) &, exec,
// redirections, echo, cat, date +%s, sleep, kill [-SIG] PID, rm -f, mv -f,
// case, sh -c SCRIPT ARG0 ARGS, ps, grep -q. No `timeout` (ESXi wants "-t SECS", Debian "SECS"), no `tr`
// (missing on ESXi), no `trap`.
//
// Files on the host (all under /tmp, a RAM disk: a few hundred bytes per
// point):
//
//	/tmp/capturectl-RUN.deadline    host-clock Unix time after which the run's
//	                                captures stop by themselves; capturectl
//	                                pushes it forward while it lives, each
//	                                time through a temporary file renamed
//	                                over it (RUN.deadline.PID), so that a
//	                                reader never sees half a number; the
//	                                last watchdog of the run removes it
//	/tmp/capturectl-RUN-N.lease     one per capture point: "capturectl-lease v1
//	                                pid=PID start=UNIX run=RUN point=NAME
//	                                deadline=FILE cmd=pktcap-uw ..."

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

const (
	leaseDir    = "/tmp"
	leasePrefix = "capturectl-"
	leaseMagic  = "capturectl-lease v1"
	// pidTag starts the line the start script writes to stderr before
	// pktcap-uw's banner.
	pidTag = "capturectl-pid "
)

var (
	// reRunID is what run IDs look like (they become file names).
	reRunID = regexp.MustCompile(`^[a-z0-9]{4,32}$`)
	// reLeaseFile is what the files of a run look like; a file in /tmp
	// with another name is never touched (its name could carry shell
	// syntax into the rm command).
	reLeaseFile = regexp.MustCompile(`^/tmp/capturectl-([a-z0-9]{4,32})(-[0-9]{1,4}\.lease|\.deadline|\.deadline\.[0-9]{1,10})$`)
)

func deadlineFile(run string) string { return leaseDir + "/" + leasePrefix + run + ".deadline" }

// watchdogName is the watchdog's $0: what ps shows of it besides the
// script text, which names neither pktcap-uw nor its command line.
const watchdogName = "capturectl-watchdog"

func leaseFile(run string, n int) string {
	return fmt.Sprintf("%s/%s%s-%d.lease", leaseDir, leasePrefix, run, n)
}

// shQuote single-quotes s for a POSIX shell.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// psCmd lists processes with their command lines: ESXi's `ps -c` (WID CID
// WorldName Command), or busybox ps (PID USER COMMAND) where -c is refused.
const psCmd = "(ps -c 2>/dev/null || ps)"

// setDeadlineScript writes the run's deadline: ttl seconds from now on the
// host's clock. It prints the host's clock. The number goes into a
// temporary file first, renamed over the deadline (rename is atomic in
// busybox's mv as in the kernel), so that a watchdog or a cleanup never
// reads an empty or half-written deadline; a write that fails (a full
// /tmp) leaves the previous deadline as it was, removes the temporary file
// and fails the command.
func setDeadlineScript(run string, ttl int) string {
	d := deadlineFile(run)
	return fmt.Sprintf("n=$(date +%%s); t=%[1]s.$$; if echo $((n + %[2]d)) > $t && mv -f $t %[1]s; then echo $n; "+
		"else rm -f $t; echo \"capturectl: cannot write %[1]s (is /tmp full?)\" >&2; exit 1; fi", d, ttl)
}

// startScript is the command of one capture channel. It prints the shell's
// PID (which exec hands to pktcap-uw), writes the lease, starts the
// dead-man watchdog and replaces itself by pktcap-uw. Stdout carries only
// the pcap stream; everything else goes to stderr or /dev/null.
//
// The watchdog is a shell of its own (sh -c SCRIPT capturectl-watchdog
// PID), not a subshell: a forked subshell keeps its parent's command line,
// and ps would show it as a second "sh -c ... exec pktcap-uw ..." for every
// capture. Its script names neither pktcap-uw (the ps check matches
// "pktcap-u[w]") nor the capture's command. Every 2 s it checks that the
// lease still exists (capturectl removes it once the capture is stopped:
// the watchdog then ends) and that the deadline has not passed. A deadline
// file that is empty or holds no number at least the run's start (a
// partial write) is not taken as expired: the watchdog keeps the last good
// deadline it read (at first start+ttl, the deadline capturectl wrote
// before starting the script); a deadline file that is gone is (cleanup
// removed it). Past the deadline it stops pktcap-uw as an operator would:
// SIGINT (pktcap-uw closes its output and prints its summary), SIGTERM
// after 5 s, SIGKILL after 5 s more; each only while ps still shows that
// PID running pktcap-uw, so that a PID the system reused is never
// signalled. Then it removes the lease; the watchdog that finds no other
// lease of its run left removes the run's deadline too.
//
// start is the run's start on the host's clock (setDeadlineScript prints
// it), so that the script starts no process before pktcap-uw; ttl is the
// dead-man time setDeadlineScript was given.
func startScript(run string, n int, point string, start int64, ttl int, pktcapCmd string) string {
	l, d := leaseFile(run, n), deadlineFile(run)
	lease := fmt.Sprintf(`echo "%s pid=$$ start=%d "%s > %s`, leaseMagic, start,
		shQuote(fmt.Sprintf("run=%s point=%s deadline=%s cmd=%s", run, point, d, pktcapCmd)), l)
	// The watchdog lets go of the channel's stdin, stdout and stderr, so
	// that the channel ends when pktcap-uw does.
	return fmt.Sprintf("echo %s$$ >&2; %s; sh -c %s %s $$ </dev/null >/dev/null 2>&1 & exec %s",
		pidTag, lease, shQuote(watchdogScript(run, l, d, start, ttl)), watchdogName, pktcapCmd)
}

// watchdogScript is the watchdog's script; $1 is pktcap-uw's PID.
func watchdogScript(run, lease, deadline string, start int64, ttl int) string {
	// busybox: "PID USER COMMAND"; ESXi ps -c: "WID CID WorldName Command".
	alive := fmt.Sprintf(`%s | grep -q -e "^ *$p .*pktcap-u[w]" -e "^ *[0-9][0-9]*  *$p .*pktcap-u[w]"`, psCmd)
	return fmt.Sprintf(`p=$1; t=%[4]d; alive() { %[5]s; }; `+
		`while [ -f %[2]s ]; do v=$(cat %[3]s 2>/dev/null); `+
		`case "$v" in "" | *[!0-9]*) [ -f %[3]s ] || break ;; *) [ "$v" -ge %[6]d ] && t=$v ;; esac; `+
		`[ "$(date +%%s)" -lt "$t" ] || break; sleep 2; done; `+
		`if [ -f %[2]s ]; then for s in INT TERM 9; do alive || break; kill -$s $p; n=0; `+
		`while [ $n -lt 5 ] && alive; do sleep 1; n=$((n + 1)); done; done; rm -f %[2]s; fi; `+
		`for f in %[1]s-*.lease; do [ -f "$f" ] && exit 0; done; rm -f %[3]s`,
		leaseDir+"/"+leasePrefix+run, lease, deadline, start+int64(ttl), alive, start)
}

// psEntry is one line of a process listing.
type psEntry struct {
	ids  [2]int // busybox: PID; ESXi: WID, CID
	line string
}

// parsePS reads `ps -c` (ESXi) or busybox `ps` output: every line that
// starts with a number.
func parsePS(out string) []psEntry {
	var es []psEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		e := psEntry{ids: [2]int{a, -1}, line: line}
		if b, err := strconv.Atoi(f[1]); err == nil {
			e.ids[1] = b
		}
		es = append(es, e)
	}
	return es
}

// running reports whether the listing shows process pid running cmd (the
// exact pktcap-uw command line): by PID (busybox) or cartel ID (ESXi), and
// by command line, so that a reused PID is never taken for ours.
//
// The command must be the process's own command line, not text inside
// another's (the start script's "sh -c ... exec pktcap-uw ..." carries it
// too): before it come at most the ID, user or cartel and world name
// columns, and an optional directory ("/bin/pktcap-uw ...").
func running(ps []psEntry, pid int, cmd string) bool {
	for _, e := range ps {
		if e.ids[0] != pid && e.ids[1] != pid {
			continue
		}
		i := strings.Index(e.line, cmd)
		if i < 0 || !strings.HasSuffix(e.line[i:], cmd) && e.line[i+len(cmd)] != ' ' {
			continue
		}
		prefix := e.line[:i]
		if j := strings.LastIndexAny(prefix, " \t"); j >= 0 && strings.HasPrefix(prefix[j+1:], "/") {
			prefix = prefix[:j+1] // a directory before the program name
		} else if j < 0 && strings.HasPrefix(prefix, "/") {
			prefix = ""
		} else if j >= 0 && j != len(prefix)-1 {
			continue // the command is glued to other text
		}
		if len(strings.Fields(prefix)) <= 3 {
			return true
		}
	}
	return false
}

// Lease is a capture lease found on a host.
type Lease struct {
	File  string // the lease file
	PID   int
	Start int64 // host clock, Unix seconds
	Run   string
	Point string
	// Deadline is the run's deadline on the host clock, Unix seconds; 0
	// when the deadline file is gone, -1 when it holds no number (an empty
	// or partial file: not expired).
	Deadline int64
	Cmd      string
}

// parseLease parses a lease line.
func parseLease(file, line string) (Lease, error) {
	l := Lease{File: file}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), leaseMagic+" ")
	if !ok {
		return l, fmt.Errorf("lease %s: not a capturectl lease: %q", file, line)
	}
	head, cmd, ok := strings.Cut(rest, " cmd=")
	if !ok || !strings.HasPrefix(cmd, "pktcap-uw ") {
		return l, fmt.Errorf("lease %s: no pktcap-uw command", file)
	}
	l.Cmd = cmd
	for _, kv := range strings.Fields(head) {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "pid":
			l.PID, err = strconv.Atoi(v)
			if err == nil && l.PID <= 1 {
				err = fmt.Errorf("pid %d", l.PID)
			}
		case "start":
			l.Start, err = strconv.ParseInt(v, 10, 64)
		case "run":
			if !reRunID.MatchString(v) {
				err = fmt.Errorf("run %q", v)
			}
			l.Run = v
		case "point":
			l.Point = v
		}
		if err != nil {
			return l, fmt.Errorf("lease %s: bad %s: %w", file, k, err)
		}
	}
	if l.PID == 0 || l.Run == "" {
		return l, fmt.Errorf("lease %s: pid or run missing", file)
	}
	return l, nil
}

// listScript prints every lease and deadline file, the host's clock and
// the process listing, in sections parseListing reads.
const listScript = "for f in " + leaseDir + "/" + leasePrefix + "*.lease " + leaseDir + "/" + leasePrefix + "*.deadline " +
	leaseDir + "/" + leasePrefix + "*.deadline.*; do " +
	`[ -f "$f" ] && echo "file $f $(cat "$f")"; done; echo "now $(date +%s)"; echo "ps"; ` + psCmd

// deadlineUnknown is the deadline of a run whose deadline file holds no
// number (written by an older capturectl, or cut short): not expired.
const deadlineUnknown = -1

// listing is what listScript shows.
type listing struct {
	leases    []Lease
	bad       []string            // lease files that do not parse
	deadlines map[string]int64    // run -> deadline; deadlineUnknown when it holds no number
	temps     map[string][]string // run -> temporary deadline files (a write cut short)
	now       int64
	ps        []psEntry
}

func parseListing(out string) (listing, error) {
	ls := listing{deadlines: map[string]int64{}, temps: map[string][]string{}}
	before, psOut, ok := strings.Cut(out, "\nps\n")
	if !ok {
		return ls, fmt.Errorf("listing without a process list: %q", out)
	}
	haveNow := false
	for _, line := range strings.Split(before, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "now "):
			n, err := strconv.ParseInt(strings.TrimSpace(line[4:]), 10, 64)
			if err != nil {
				return ls, fmt.Errorf("host clock %q: %w", line, err)
			}
			ls.now, haveNow = n, true
		case strings.HasPrefix(line, "file "):
			file, content, _ := strings.Cut(line[5:], " ")
			m := reLeaseFile.FindStringSubmatch(file)
			switch {
			case m == nil:
				// Not a name this package writes: leave it alone.
			case m[2] == ".deadline":
				d, err := strconv.ParseInt(strings.TrimSpace(content), 10, 64)
				if err != nil || d <= 0 {
					// Empty or half a number: never taken as expired (the
					// watchdogs keep their last good deadline).
					d = deadlineUnknown
				}
				ls.deadlines[m[1]] = d
			case strings.HasPrefix(m[2], ".deadline."):
				ls.temps[m[1]] = append(ls.temps[m[1]], file)
			default:
				l, err := parseLease(file, content)
				if err != nil || l.Run != m[1] {
					ls.bad = append(ls.bad, file)
					continue
				}
				ls.leases = append(ls.leases, l)
			}
		}
	}
	if !haveNow {
		return ls, fmt.Errorf("listing without the host clock: %q", before)
	}
	for i := range ls.leases {
		ls.leases[i].Deadline = ls.deadlines[ls.leases[i].Run]
	}
	ls.ps = parsePS(psOut)
	return ls, nil
}
