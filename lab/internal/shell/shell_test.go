package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const firstPID = 2099871

// newTestHost returns a host whose processes start at firstPID, closed at
// the end of the test with a check that no goroutine is left behind.
func newTestHost(t *testing.T, cmds map[string]Command) *Host {
	t.Helper()
	before := runtime.NumGoroutine()
	h := NewHost("esx01.lab", NewProcTable(firstPID, nil), NewFS(nil), cmds,
		WithClock(func() time.Time { return time.Unix(1700000000, 0) }))
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		checkGoroutines(t, before)
	})
	return h
}

func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: got %d after Close; want <= %d\n%s", n, before, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type result struct {
	out, err string
	status   int
}

func run(t *testing.T, h *Host, script string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	st := h.Run(ctx, script, nil, &out, &errb)
	return result{out.String(), errb.String(), st}
}

func TestScripts(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   result
	}{
		{"quoting", `echo 'a  b' "c  d" e\ f "$HOME" '$HOME' "\$x\"y"`, result{"a  b c  d e f / $HOME $x\"y\n", "", 0}},
		{"field splitting", `x="1  2 3"; for i in $x; do echo "[$i]"; done; echo "[$x]"`, result{"[1]\n[2]\n[3]\n[1  2 3]\n", "", 0}},
		{"dollar dollar is the shell", `echo $$`, result{fmt.Sprintf("%d\n", firstPID), "", 0}},
		{"status", `false; echo $?; true; echo $?; ! true; echo $?`, result{"1\n0\n1\n", "", 0}},
		{"and or", `false && echo no || echo yes; true && echo ok`, result{"yes\nok\n", "", 0}},
		{"unknown command", `nosuch-cmd arg`, result{"", "sh: nosuch-cmd: not found\n", 127}},
		{"unknown command status", `nosuch; echo $?`, result{"127\n", "sh: nosuch: not found\n", 0}},
		{"unknown path", `/tmp/nosuch`, result{"", "sh: /tmp/nosuch: not found\n", 127}},
		{"not found silenced", `nosuch 2>/dev/null; echo $?`, result{"127\n", "", 0}},
		{"kill missing pid", `kill 123`, result{"", "sh: can't kill pid 123: No such process\n", 1}},
		{"kill two missing pids", `kill -9 123 456`, result{"", "sh: can't kill pid 123: No such process\nsh: can't kill pid 456: No such process\n", 2}},
		{"kill bad number", `kill abc`, result{"", "sh: invalid number 'abc'\n", 1}},
		{"kill bad signal", `kill -FOO 1`, result{"", "sh: bad signal name 'FOO'\n", 1}},
		{"kill nobody", `kill -TERM`, result{"", "sh: you need to specify whom to kill\n", 1}},
		{"kill -l conversions", `kill -l 143; kill -l INT; kill -l sigkill`, result{"TERM\n2\n9\n", "", 0}},
		{"kill -0 missing", `kill -0 99 2>/dev/null || echo gone`, result{"gone\n", "", 0}},
		{"pipeline", `printf 'alpha\nbeta\ngamma\n' | grep -v beta | grep a`, result{"alpha\ngamma\n", "", 0}},
		{"pipeline status is the last", `false | true; echo $?; true | false; echo $?`, result{"0\n1\n", "", 0}},
		{"stderr to stdout in a pipe", `{ echo out; echo err >&2; } 2>&1 | cat`, result{"out\nerr\n", "", 0}},
		{"stdout to stderr", `echo moved >&2`, result{"", "moved\n", 0}},
		{"redirect and append", `echo a >/tmp/f; echo b >>/tmp/f; cat </tmp/f; cat /tmp/f | grep -c .`, result{"a\nb\n2\n", "", 0}},
		{"create in missing dir", `echo x >/nope/f`, result{"", "sh: can't create /nope/f: nonexistent directory\n", 2}},
		{"open missing file", `cat </tmp/none; echo $?`, result{"2\n", "sh: can't open /tmp/none: no such file\n", 0}},
		{"cat missing file", `cat /tmp/none`, result{"", "cat: can't open '/tmp/none': No such file or directory\n", 1}},
		{"dev null", `echo x >/dev/null; cat /dev/null; echo done`, result{"done\n", "", 0}},
		{"command substitution", `x=$(echo a; echo b); echo "$x" $(printf '%s-' 1 2)`, result{"a\nb 1-2-\n", "", 0}},
		{"arithmetic", `i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i $((7 % 3)) $((2*(3+4)))`, result{"3 1 14\n", "", 0}},
		{"parameter forms", `unset u; e=; echo ${u:-d1} ${e:-d2} ${e-d3}x ${#HOME} ${u:+alt}x; f=/tmp/a.b.c; echo ${f%.*} ${f%%.*} ${f#*.} ${f##*/}`, result{"d1 d2 x 1 x\n/tmp/a.b /tmp/a b.c a.b.c\n", "", 0}},
		{"quoted $@ splits inside quotes", `set -- a b; for i in "x$@y"; do echo "[$i]"; done; set --; for i in "$@"; do echo none; done`, result{"[xa]\n[by]\n", "", 0}},
		{"no brace expansion", `echo {a,b} x{1..2}`, result{"{a,b} x{1..2}\n", "", 0}},
		{"backslash in assignments and defaults", `x=e\ f; echo "$x"; echo ${u:-a\ b} "${u:-a\ b}"`, result{"e f\na b a\\ b\n", "", 0}},
		{"unset parameter error exits", `echo ${x?}; echo no`, result{"", "sh: x: parameter not set\n", 2}},
		{"null parameter error", `x=; echo ${x:?}`, result{"", "sh: x: parameter not set or null\n", 2}},
		{"parameter error message", `echo ${x?where is x}`, result{"", "sh: x: where is x\n", 2}},
		{"arithmetic assignment", `echo $((x=5)) $x $((x+=2)) $((x++)) $x $((y)) $((0x10 + 010))`, result{"5 5 7 7 8 0 24\n", "", 0}},
		{"arithmetic error", `echo $((1/0))`, result{"", "sh: divide by zero\n", 1}},
		{"tilde", `echo ~ ~/x ~root ~nosuch/y; x=~/a; echo $x`, result{"/ //x / ~nosuch/y\n//a\n", "", 0}},
		{"relative glob", `cd /tmp && : >f1 && : >f2 && echo f* ./f? && rm f*; echo f*`, result{"f1 f2 ./f1 ./f2\nf*\n", "", 0}},
		{"quoted glob characters", `x='*'; echo "$x" \* '*'; case abc in a\*) echo lit;; "a"*) echo glob;; esac`, result{"* * *\nglob\n", "", 0}},
		{"if elif else", `if false; then echo 1; elif true; then echo 2; else echo 3; fi`, result{"2\n", "", 0}},
		{"case", `for w in abc x.lease; do case $w in a*) echo A;; *.lease) echo L;; esac; done`, result{"A\nL\n", "", 0}},
		{"function", `f() { echo "f:$1:$#"; return 3; }; f a b; echo $?`, result{"f:a:2\n3\n", "", 0}},
		{"subshell keeps variables local", `x=1; (x=2; echo $x); echo $x`, result{"2\n1\n", "", 0}},
		{"exit", `echo a; exit 4; echo b`, result{"a\n", "", 4}},
		{"test", `[ -d /tmp ] && [ ! -f /tmp ] && [ abc = abc ] && [ 3 -gt 2 -a -n x ] && test -z "" && echo ok`, result{"ok\n", "", 0}},
		{"test bad number", `[ x -eq 1 ]`, result{"", "sh: x: bad number\n", 2}},
		{"test missing bracket", `[ 1 = 1`, result{"", "sh: missing ]\n", 2}},
		{"echo options", `echo -n a; echo -e 'b\tc'; echo 'd\n'`, result{"ab\tc\nd\\n\n", "", 0}},
		{"echo -e escapes", `echo -e 'a\0101\x41\tz'; echo -e 'p\cq'; echo X`, result{"aAA\tz\npX\n", "", 0}},
		{"printf bad format", `printf 'a%q'; echo " $?"`, result{" 1\n", "sh: %q: invalid format\n", 0}},
		{"printf width is bounded", `x=$(printf '%99999999s' x); echo ${#x}`, result{"65536\n", "", 0}},
		{"printf %b and %c", `printf '%b|%c|%03d\n' 'a\tb' xyz 7`, result{"a\tb|x|007\n", "", 0}},
		{"printf", `printf '%s=%d %5s|%-3s|%x\n' a 42 r l 255; printf '%s\n' x y`, result{"a=42     r|l  |ff\nx\ny\n", "", 0}},
		{"glob", `touch() { : >"$1"; }; touch /tmp/capturectl-1.lease; touch /tmp/capturectl-2.lease; echo /tmp/capturectl-*.lease; rm -f /tmp/capturectl-*.lease; echo /tmp/capturectl-*.lease`, result{"/tmp/capturectl-1.lease /tmp/capturectl-2.lease\n/tmp/capturectl-*.lease\n", "", 0}},
		{"mkdir rm ls", `mkdir -p /tmp/a/b && : >/tmp/a/b/f && ls /tmp/a/b && rm /tmp/a; echo $?; rm -r /tmp/a && ls /tmp`, result{"f\n1\n", "rm: '/tmp/a' is a directory\n", 0}},
		{"mv", `mkdir /tmp/d && echo a >/tmp/a && mv /tmp/a /tmp/b && cat /tmp/b && mv /tmp/b /tmp/d && cat /tmp/d/b && cd /tmp && mv d e && ls e && echo c >c && mv -n c e/b && cat e/b && mv c e/b && cat e/b && ls`, result{"a\na\nb\na\nc\ne\n", "", 0}},
		{"mv errors", `mv; mv /tmp/none /tmp/x; mkdir -p /tmp/d/s; : >/tmp/d/s/f; mkdir /tmp/s; mv /tmp/s /tmp/d; mv /tmp/d /tmp/d/x; mv -x a b`, result{"", mvUsage +
			"mv: can't rename '/tmp/none': No such file or directory\nmv: can't rename '/tmp/s': Directory not empty\nmv: can't rename '/tmp/d': Invalid argument\nmv: invalid option -- 'x'\n" + mvUsage, 1}},
		{"mv -v", `: >/tmp/a; mv -v /tmp/a /tmp/b`, result{"'/tmp/a' -> '/tmp/b'\n", "", 0}},
		{"mv -i asks", `: >/tmp/a; : >/tmp/b; echo n | mv -i /tmp/a /tmp/b; ls /tmp; echo ' y' | mv -i /tmp/a /tmp/b; ls /tmp`, result{"a\nb\nb\n", "mv: overwrite '/tmp/b'? mv: overwrite '/tmp/b'? ", 0}},
		{"mv several into a directory", `cd /tmp && : >a && : >b && mkdir d && mv a b d/ && ls d && mv d/a d/b nodir`, result{"a\nb\n", "mv: can't rename 'd/a': No such file or directory\nmv: can't rename 'd/b': No such file or directory\n", 1}},
		{"mkdir exists", `mkdir /tmp`, result{"", "mkdir: can't create directory '/tmp': File exists\n", 1}},
		{"uname", `uname -s; uname -a`, result{"VMkernel\nVMkernel esx01.lab 6.7.0 #1 SMP Release build-8169922 Apr  3 2018 14:48:22 x86_64 x86_64 x86_64 ESXi\n", "", 0}},
		{"vmware -v", `vmware -v`, result{"VMware ESXi 6.7.0 build-8169922\n", "", 0}},
		{"vmware -l refused", `vmware -l`, result{"", "vmware: the lab answers only 'vmware -v'\n", 1}},
		{"date and hostname", `date +%s; date; hostname; hostname -s`, result{"1700000000\nTue Nov 14 22:13:20 UTC 2023\nesx01.lab\nesx01\n", "", 0}},
		{"grep options", `printf 'Foo\nbar\n' >/tmp/g; grep -i foo /tmp/g; grep -q bar /tmp/g && echo q; grep -c o /tmp/g; grep zzz /tmp/g; echo $?`, result{"Foo\nq\n1\n1\n", "", 0}},
		{"grep -A", `printf 'a\n1\n2\nb\nx\ny\na\n3\n' | grep -A 1 a; printf 'Port ID: 7\n   Team Uplink: vmnic2\n' | grep -A 8 'Port ID: 7' | grep "Team Uplink"`, result{"a\n1\n--\na\n3\n   Team Uplink: vmnic2\n", "", 0}},
		{"head tail wc", `printf '1\n2\n3\n4\n' >/tmp/n; head -n 2 /tmp/n; tail -1 /tmp/n; head -3 /tmp/n | tail -n 1; wc -l </tmp/n; wc -l /tmp/n`, result{"1\n2\n4\n3\n4\n4 /tmp/n\n", "", 0}},
		{"sort uniq", `printf 'b 2\na 10\nb 2\nc 1\n' | sort | uniq -c; printf '3\n10\n2\n' | sort -n; printf 'x 3\ny 1\n' | sort -k 2 -n -r; printf 'b\na\nb\n' | sort -u`, result{"      1 a 10\n      2 b 2\n      1 c 1\n2\n3\n10\nx 3\ny 1\na\nb\n", "", 0}},
		{"cut", `printf 'a:b:c\nnone\n' | cut -d: -f2,3; echo 'x y' | cut -d ' ' -f 2`, result{"b:c\nnone\ny\n", "", 0}},
		{"awk", `printf '50331657 5 9 vSwitch1 00:50:56:9d:fd:b1 testvm2.eth0\n33554434 4 0 vSwitch0 00:50:56:01:02:00 vmnic0\n' >/tmp/ns; awk '{print $1}' /tmp/ns; awk '$2 == "5" {print $NF, NR}' /tmp/ns; awk '/vmnic/ {print "uplink:" $6}' /tmp/ns; awk -F: 'NR==1 {print $2}' /tmp/ns; awk 'NR>1' /tmp/ns`, result{"50331657\n33554434\ntestvm2.eth0 1\nuplink:vmnic0\n50\n33554434 4 0 vSwitch0 00:50:56:01:02:00 vmnic0\n", "", 0}},
		// VMware KB 2051814 stops leftover captures this way (ps -c in place of lsof)
		{"KB 2051814 pipeline", `printf '  1001  1001  pktcap-uw  pktcap-uw --uplink vmnic2 -o -\n  1001  1001  pktcap-uw  pktcap-uw --uplink vmnic2 -o -\n  1002  1002  sh  sh\n' | grep pktcap-uw | awk '{print $1}' | sort -u`, result{"1001\n", "", 0}},
		{"awk beyond the lab", `echo a | awk '{s += $1} END {print s}'`, result{"", "awk: the lab's awk runs only rules like '/RE/ {print $1, $3}'\n", 2}},
		{"sort option beyond the lab", `echo a | sort -t: -k2`, result{"", "sort: the lab's sort takes only -n, -r, -u and -k N\n", 1}},
		{"timeout new form is refused", `timeout 5 echo hi`, result{"", "timeout: can't execute '5': No such file or directory\n", 127}},
		{"timeout finishes in time", `timeout -t 5 echo hi`, result{"hi\n", "", 0}},
		{"timeout bad signal", `timeout -t 1 -s FOO true`, result{"", "timeout: unknown signal 'FOO'\n", 1}},
		{"syntax error", `if then fi`, result{"", "", 2}},
		{"here-document", "cat <<EOF\nhello $HOME\nEOF\ncat <<'E'\n$HOME\nE", result{"hello /\n$HOME\n", "", 0}},
		{"read with backslashes", `printf '  a\\ b  c  \n' | { read x y; echo "[$x][$y]"; }; printf 'a\\ b\n' | { read -r x; echo "[$x]"; }`, result{"[a b][c]\n[a\\ b]\n", "", 0}},
		{"read", `printf 'a b c\n' | { read x y; echo "$y|$x"; }`, result{"b c|a\n", "", 0}},
		{"set options refused", `set -e`, result{"", "sh: set: -e: shell options are not emulated by the lab\n", 2}},
		{"sh -c with args", `sh -c 'echo $0 $1 $#' zero one`, result{"zero one 1\n", "", 0}},
		{"exec without command redirects the shell", `exec 2>/dev/null; nosuch; echo $?`, result{"127\n", "", 0}},
		{"exec not found", `exec nosuch; echo never`, result{"", "sh: nosuch: not found\n", 127}},
		{"background stdin is /dev/null", `cat & wait; echo done`, result{"done\n", "", 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t, nil)
			got := run(t, h, tc.script)
			if tc.name == "syntax error" {
				if got.status != 2 || !strings.HasPrefix(got.err, "sh: syntax error: ") {
					t.Errorf("got %+v; want status 2 and a sh: syntax error: message", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("script %q\ngot  %+v\nwant %+v", tc.script, got, tc.want)
			}
		})
	}
}

func TestOrderingOnOneWriter(t *testing.T) {
	h := newTestHost(t, nil)
	var buf bytes.Buffer
	st := h.Run(context.Background(), `echo a; echo b >&2; echo c; nosuch`, nil, &buf, &buf)
	if want := "a\nb\nc\nsh: nosuch: not found\n"; buf.String() != want || st != 127 {
		t.Errorf("got %q, %d; want %q, 127", buf.String(), st, want)
	}
}

func TestFilesPersistAcrossRuns(t *testing.T) {
	h := newTestHost(t, nil)
	run(t, h, `echo "lease 1" >/tmp/capturectl.lease`)
	if got := run(t, h, `cat /tmp/capturectl.lease`); got.out != "lease 1\n" {
		t.Errorf("got %+v; want the lease written by the first run", got)
	}
	b, err := h.FS().ReadFile("/tmp/capturectl.lease")
	if err != nil || string(b) != "lease 1\n" {
		t.Errorf("ReadFile: got %q, %v; want %q", b, err, "lease 1\n")
	}
}

func TestFSCreate(t *testing.T) {
	h := newTestHost(t, nil)
	w, err := h.FS().Create("/tmp/cap.pcap")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("ab"))
	w.Write([]byte("c\n"))
	w.Close()
	if got := run(t, h, `cat /tmp/cap.pcap`); got.out != "abc\n" {
		t.Errorf("got %+v; want the created file", got)
	}
	if _, err := h.FS().Create("/nope/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create in a missing directory: got %v; want fs.ErrNotExist", err)
	}
}

func TestPIDsAreDeterministicAndSequential(t *testing.T) {
	h := newTestHost(t, nil)
	// Each Run is a new sh; `cat` in the middle of a list is a child
	// process; the last command (sh -c) replaces the shell, keeping its PID.
	got := run(t, h, `echo $$; cat /dev/null; sh -c 'echo $$'; `)
	want := fmt.Sprintf("%d\n%d\n", firstPID, firstPID)
	if got.out != want {
		t.Errorf("got %q; want %q", got.out, want)
	}
	got = run(t, h, `echo $$; (echo $$; sh -c 'echo $$'); echo end`)
	want = fmt.Sprintf("%d\n%d\n%d\nend\n", firstPID+2, firstPID+2, firstPID+3)
	if got.out != want {
		t.Errorf("subshell: got %q; want %q ($$ is the parent's in a subshell; sh -c execs in the forked subshell)", got.out, want)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// capture is a test stand-in for pktcap-uw: it writes a banner to stderr,
// then waits for a signal; on INT/TERM it prints a summary and exits 0. With
// ignore set it ignores every signal and only ends when released.
func capture(ignore bool, release <-chan struct{}) Command {
	return func(ctx context.Context, p *Proc, args []string) int {
		sigs := p.Signals()
		fmt.Fprintln(p.Stderr(), "The name of the uplink is vmnic2.")
		for {
			select {
			case s := <-sigs:
				if ignore {
					continue
				}
				fmt.Fprintf(p.Stderr(), "Destroying session %s.\n", s)
				return 0
			case <-release:
				return 0
			case <-ctx.Done():
				return 1
			}
		}
	}
}

func TestExecKeepsPIDAndKillStopsIt(t *testing.T) {
	h := newTestHost(t, map[string]Command{"pktcap-uw": capture(false, nil)})
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- h.Run(context.Background(), `sh -c 'echo $$; exec pktcap-uw --uplink vmnic2 -o -'`, nil, &out, &errb)
	}()
	waitFor(t, "the pid line", func() bool { return strings.Contains(out.String(), "\n") })
	pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("pid line %q: %v", out.String(), err)
	}
	waitFor(t, "the banner", func() bool { return strings.Contains(errb.String(), "vmnic2") })
	ps := run(t, h, `ps -c`)
	wantLine := fmt.Sprintf("%-9d%-9d%-18s %s", pid, pid, "pktcap-uw", "pktcap-uw --uplink vmnic2 -o -")
	if !strings.Contains(ps.out, wantLine+"\n") {
		t.Errorf("ps -c:\n%s\nwant a line %q", ps.out, wantLine)
	}
	if pi, ok := h.Procs().Lookup(pid); !ok || pi.CID != pid || pi.Name != "pktcap-uw" {
		t.Errorf("Lookup(%d) = %+v, %v; want the pktcap-uw cartel", pid, pi, ok)
	}
	if got := run(t, h, fmt.Sprintf("kill -INT %d; echo $?", pid)); got.out != "0\n" {
		t.Errorf("kill: got %+v; want status 0", got)
	}
	select {
	case st := <-done:
		if st != 0 {
			t.Errorf("run status %d; want 0 (pktcap-uw exits 0 on INT)", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after kill -INT")
	}
	if !strings.Contains(errb.String(), "Destroying session INT.") {
		t.Errorf("stderr %q; want the summary", errb.String())
	}
	if _, ok := h.Procs().Lookup(pid); ok {
		t.Errorf("pid %d still in the table after it exited", pid)
	}
}

func TestKill9RemovesAProcessThatIgnoresSignals(t *testing.T) {
	release := make(chan struct{})
	h := newTestHost(t, map[string]Command{"stubborn": capture(true, release)})
	defer close(release)
	got := run(t, h, `stubborn >/dev/null 2>&1 & echo $!`)
	pid, err := strconv.Atoi(strings.TrimSpace(got.out))
	if err != nil {
		t.Fatalf("$!: %q: %v", got.out, err)
	}
	waitFor(t, "stubborn to subscribe to signals", func() bool {
		_, ok := h.Procs().Lookup(pid)
		p := procOf(h, pid)
		return ok && p != nil && handles(p)
	})
	if got := run(t, h, fmt.Sprintf("kill %d; kill -s INT %d; kill -HUP %d; kill -0 %d && echo alive", pid, pid, pid, pid)); got.out != "alive\n" {
		t.Fatalf("after TERM/INT/HUP: got %+v; want it alive", got)
	}
	if got := run(t, h, fmt.Sprintf("kill -9 %d; echo $?; ps | grep -c stubborn", pid)); got.out != "0\n0\n" {
		t.Errorf("after kill -9: got %+v; want status 0 and no stubborn in ps", got)
	}
	if got := run(t, h, fmt.Sprintf("kill %d", pid)); got.err != fmt.Sprintf("sh: can't kill pid %d: No such process\n", pid) || got.status != 1 {
		t.Errorf("kill after kill -9: got %+v", got)
	}
}

func procOf(h *Host, pid int) *Proc {
	h.procs.mu.Lock()
	defer h.procs.mu.Unlock()
	if w := h.procs.worlds[pid]; w != nil {
		return w.proc
	}
	return nil
}

func handles(p *Proc) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handling
}

func TestBackgroundKillAndWait(t *testing.T) {
	h := newTestHost(t, nil)
	got := run(t, h, `sleep 100 & p=$!; kill $p; wait $p; echo "$p $?"`)
	if want := fmt.Sprintf("%d 143\n", firstPID+1); got.out != want {
		t.Errorf("got %+v; want %q", got, want)
	}
}

func TestBackgroundOutlivesShellAndHoldsOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHost("esx01", NewProcTable(firstPID, nil), nil, nil)
		defer h.Close()
		start := time.Now()
		// Without redirection the background sleep holds stdout: Run (and
		// so an SSH session) waits for it, like sshd.
		var out bytes.Buffer
		h.Run(context.Background(), `sleep 30 & echo started`, nil, &out, &out)
		if d := time.Since(start); d != 30*time.Second {
			t.Errorf("Run returned after %v; want 30s (the background sleep holds stdout)", d)
		}
		// With its output redirected it does not, and it outlives the shell.
		start = time.Now()
		h.Run(context.Background(), `sleep 30 >/dev/null 2>&1 & echo $! >/tmp/pid`, nil, &out, &out)
		if d := time.Since(start); d != 0 {
			t.Errorf("Run returned after %v; want at once", d)
		}
		b, _ := h.FS().ReadFile("/tmp/pid")
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pi, ok := h.Procs().Lookup(pid); !ok || pi.Name != "sleep" || pi.PPID != firstPID+2 {
			t.Errorf("Lookup(%d) = %+v, %v; want the sleep, child of the exited shell", pid, pi, ok)
		}
	})
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		script string
		want   string
		after  time.Duration
	}{
		{`timeout -t 3 sleep 10; echo $?`, "143\n", 3 * time.Second},
		{`timeout -t 2 -s INT sleep 10; echo $?`, "130\n", 2 * time.Second},
		{`timeout -s KILL -t1 sleep 10; echo $?`, "137\n", time.Second},
		{`timeout -t 5 sleep 1; echo $?`, "0\n", time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.script, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := NewHost("esx01", NewProcTable(firstPID, nil), nil, nil)
				defer h.Close()
				var out bytes.Buffer
				start := time.Now()
				h.Run(context.Background(), tc.script, nil, &out, &out)
				if out.String() != tc.want || time.Since(start) != tc.after {
					t.Errorf("got %q after %v; want %q after %v", out.String(), time.Since(start), tc.want, tc.after)
				}
			})
		})
	}
}

func TestTimeoutProgKeepsTimeoutsPID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHost("esx01", NewProcTable(firstPID, nil), nil, nil)
		defer h.Close()
		var out bytes.Buffer
		h.Run(context.Background(), `timeout -t 9 sleep 5 & echo $!; sleep 1; ps -P`, nil, &out, &out)
		lines := strings.Split(out.String(), "\n")
		bg := lines[0]
		// The PID that $! gave runs sleep (timeout exec'd it), child of
		// the shell; the watcher is a "timeout" world of its own, orphaned.
		wantSleep := fmt.Sprintf("%-9s%-9s%-9d%s", bg, bg, firstPID, "sleep")
		if !slicesContains(lines, wantSleep) {
			t.Errorf("got\n%s\nwant a line %q", out.String(), wantSleep)
		}
		if !strings.Contains(out.String(), "0        timeout\n") {
			t.Errorf("got\n%s\nwant the timeout watcher with PCID 0", out.String())
		}
	})
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFormatPSVerbatimLayout(t *testing.T) {
	// Lines from a real ESXi 6.5 `ps` (see ps.go for the source).
	list := []ProcInfo{
		{PID: 65537, CID: 0, Name: "idle1"},
		{PID: 65770, CID: 65770, Name: "init"},
		{PID: 67846, CID: 67846, Name: "sshd"},
		{PID: 67849, CID: 67849, Name: "sh"},
		{PID: 67872, CID: 67872, Name: "ps"},
	}
	want := "WID    CID    WorldName\n" +
		"65537  0      idle1\n" +
		"65770  65770  init\n" +
		"67846  67846  sshd\n" +
		"67849  67849  sh\n" +
		"67872  67872  ps\n"
	if got := FormatPS(list, false, false, false, false); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := FormatPS(list, false, false, true, false); strings.Contains(got, "idle1") {
		t.Errorf("-u kept a kernel world:\n%s", got)
	}
}

func TestPSListsThreadsAndKernelWorlds(t *testing.T) {
	started := make(chan int, 1)
	h := newTestHost(t, map[string]Command{"pktcap-uw": func(ctx context.Context, p *Proc, args []string) int {
		p.AddThread("pktcap-uw")
		p.AddThread("pktcap-uw")
		started <- p.PID()
		<-ctx.Done()
		return 0
	}})
	k := h.Procs().AddWorld("idle0", nil, 0, true)
	run(t, h, `pktcap-uw >/dev/null 2>&1 &`)
	pid := <-started
	got := run(t, h, `ps -u; ps -C`)
	if strings.Contains(got.out, "idle0") {
		t.Errorf("ps -u lists kernel world %d:\n%s", k, got.out)
	}
	if n := strings.Count(got.out, fmt.Sprintf("%d  pktcap-uw", pid)); n != 4 {
		t.Errorf("got %d pktcap-uw lines with CID %d; want 3 (-u) + 1 (-C)\n%s", n, pid, got.out)
	}
	if got := run(t, h, fmt.Sprintf("kill %d", k)); got.status != 1 {
		t.Errorf("kill of a kernel world: got %+v; want failure", got)
	}
	if got := run(t, h, fmt.Sprintf("kill -9 %d; ps | grep -c pktcap", pid)); got.out != "0\n" {
		t.Errorf("threads left after kill -9: %+v", got)
	}
}

func TestWriteToClosedOutputFails(t *testing.T) {
	h := newTestHost(t, nil)
	got := run(t, h, `(while :; do echo y; done) | cat /dev/null; echo $?; (while :; do echo y; done; echo never >&2) | true`)
	if got.out != "0\n" || got.err != "" {
		t.Errorf("got %+v; want the writer loop to end when the reader is gone", got)
	}
}

func TestRunContextCancelKillsShell(t *testing.T) {
	h := newTestHost(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st := h.Run(ctx, `while :; do :; done`, nil, nil, nil)
	if st != 137 {
		t.Errorf("status %d; want 137", st)
	}
}
