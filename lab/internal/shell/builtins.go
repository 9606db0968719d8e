package shell

import (
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// bio is what a built-in sees: its streams and where it runs. For a busybox
// applet run as its own process (`timeout -t 5 kill ...`), sh is nil and name
// is the applet's name, which prefixes error messages ("sh" for built-ins).
type bio struct {
	h        *Host
	p        *Proc
	cwd      string
	name     string
	in       io.Reader
	out, err io.Writer
}

func (e *bio) errorf(format string, args ...any) {
	fmt.Fprintf(e.err, e.name+": "+format+"\n", args...)
}

func (s *shell) envFor(t *fdTable, name string) *bio {
	return &bio{h: s.h, p: s.p, cwd: s.cwd, name: name,
		in: guardReader{s.p, t[0]}, out: guardWriter{s.p, t[1]}, err: guardWriter{s.p, t[2]}}
}

type builtin func(s *shell, e *bio, args []string) int

// builtins are the commands busybox ash runs inside the shell process (no
// new PID).
var builtins map[string]builtin

// specialBuiltins keep variable assignments that precede them.
var specialBuiltins = map[string]bool{
	":": true, "break": true, "continue": true, "eval": true, "exec": true, "exit": true,
	"export": true, "return": true, "set": true, "shift": true, "unset": true,
}

// applets are built-ins that also exist as busybox applets, so they can be
// run as a process of their own (by timeout, exec, or a path).
var applets = map[string]builtin{
	"echo": biEcho, "printf": biPrintf, "test": biTest, "[": biTest, "kill": biKill,
	"true": biTrue, "false": biFalse,
}

func init() {
	builtins = map[string]builtin{
		":": biTrue, "true": biTrue, "false": biFalse, "echo": biEcho, "printf": biPrintf,
		"test": biTest, "[": biTest, "kill": biKill, "wait": biWait, "exec": biExec,
		"export": biExport, "unset": biUnset, "cd": biCd, "pwd": biPwd, "exit": biExit,
		"shift": biShift, "set": biSet, "read": biRead, "return": biReturn,
		"break": biBreak, "continue": biBreak, "eval": biEval,
	}
}

func biTrue(*shell, *bio, []string) int  { return 0 }
func biFalse(*shell, *bio, []string) int { return 1 }

// biEcho is busybox echo: -n, -e, -E; no escapes unless -e.
func biEcho(_ *shell, e *bio, args []string) int {
	args = args[1:]
	nl, esc := true, false
	for len(args) > 0 {
		a := args[0]
		if len(a) < 2 || a[0] != '-' || strings.Trim(a[1:], "neE") != "" {
			break
		}
		for _, c := range a[1:] {
			switch c {
			case 'n':
				nl = false
			case 'e':
				esc = true
			case 'E':
				esc = false
			}
		}
		args = args[1:]
	}
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if esc {
			out, stop := echoEscapes(a)
			b.WriteString(out)
			if stop {
				nl = false
				break
			}
		} else {
			b.WriteString(a)
		}
	}
	if nl {
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(e.out, b.String()); err != nil {
		return 1
	}
	return 0
}

// echoEscapes interprets the backslash escapes of echo -e through
// expand.Format, with echo's own forms: \c ends the output (stop), \0NNN is
// an octal byte.
func echoEscapes(a string) (out string, stop bool) {
	var b strings.Builder
	for i := 0; i < len(a); i++ {
		if a[i] != '\\' || i+1 == len(a) {
			b.WriteByte(a[i])
			continue
		}
		switch c := a[i+1]; {
		case c == 'c':
			stop = true
		case c == '0' && i+2 < len(a) && a[i+2] >= '0' && a[i+2] <= '7':
			b.WriteByte('\\') // \0NNN is printf's \NNN
		default:
			b.WriteString(a[i : i+2])
		}
		if stop {
			break
		}
		i++
	}
	out, _, _ = expand.Format(nil, b.String(), nil) // no arguments: no % formats, no errors
	return out, stop
}

// maxPrintfWidth bounds field widths, so that a script cannot make the lab
// allocate gigabytes.
const maxPrintfWidth = 1 << 16

var printfWidth = regexp.MustCompile(`%[-+ 0]*[0-9]+`)

// biPrintf is busybox printf through expand.Format (%s %b %c %d %i %u %o %x
// %%, flags - + space 0 and widths); the format is reused while arguments
// remain.
func biPrintf(_ *shell, e *bio, args []string) int {
	if len(args) < 2 {
		e.errorf("usage: printf FORMAT [ARGUMENT]...")
		return 1
	}
	format := printfWidth.ReplaceAllStringFunc(args[1], func(spec string) string {
		i := strings.LastIndexAny(spec, "-+ %") + 1
		if w, err := strconv.Atoi(spec[i:]); err != nil || w > maxPrintfWidth {
			return spec[:i] + strconv.Itoa(maxPrintfWidth)
		}
		return spec
	})
	rest := append([]string{}, args[2:]...) // non-nil: nil means "no % formats" to the library
	var b strings.Builder
	for {
		out, used, err := expand.Format(nil, format, rest)
		if err != nil {
			// busybox: "%q: invalid format"
			c, ok := strings.CutPrefix(err.Error(), "invalid format char: ")
			if !ok {
				c = ""
			}
			e.errorf("%%%s: invalid format", c)
			io.WriteString(e.out, b.String())
			return 1
		}
		b.WriteString(out)
		rest = rest[used:]
		if used == 0 || len(rest) == 0 {
			break
		}
	}
	if _, err := io.WriteString(e.out, b.String()); err != nil {
		return 1
	}
	return 0
}

// biKill is busybox kill (procps/kill.c as the ash built-in): -l, -s SIG,
// -SIG, -NUM, --; the exit status is the number of failures.
func biKill(_ *shell, e *bio, args []string) int {
	args = args[1:]
	sig := SIGTERM
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		arg := args[0][1:]
		switch {
		case arg == "l":
			return killList(e, args[1:])
		case arg == "-":
			args = args[1:]
		default:
			if arg == "s" && len(args) > 1 {
				args = args[1:]
				arg = args[0]
			}
			n, ok := signum(arg)
			if !ok {
				e.errorf("bad signal name '%s'", arg)
				return 1
			}
			sig = n
			args = args[1:]
		}
	}
	if len(args) == 0 {
		e.errorf("you need to specify whom to kill")
		return 1
	}
	errs := 0
	for _, a := range args {
		pid, err := strconv.Atoi(strings.TrimLeft(a, " "))
		if err != nil {
			e.errorf("invalid number '%s'", a)
			errs++
			continue
		}
		if err := e.h.procs.Kill(pid, sig); err != nil {
			e.errorf("can't kill pid %d: No such process", pid)
			errs++
		}
	}
	return errs
}

func killList(e *bio, args []string) int {
	var b strings.Builder
	if len(args) == 0 {
		for i := 1; i < len(signalNames); i++ {
			fmt.Fprintf(&b, "%2d) %s\n", i, signalNames[i])
		}
		fmt.Fprintf(&b, "%2d) %s\n", int(sigRTMAX), "RTMAX")
		io.WriteString(e.out, b.String())
		return 0
	}
	for _, a := range args {
		if a != "" && a[0] >= '0' && a[0] <= '9' {
			n, err := strconv.ParseUint(a, 10, 32)
			if err != nil {
				e.errorf("unknown signal '%s'", a)
				return 1
			}
			fmt.Fprintln(&b, Signal(n&0x7f).String())
		} else {
			n, ok := signum(a)
			if !ok {
				e.errorf("unknown signal '%s'", a)
				return 1
			}
			fmt.Fprintln(&b, int(n))
		}
	}
	io.WriteString(e.out, b.String())
	return 0
}

// signum is busybox get_signum: a number below 65, or a name with or
// without SIG, any case.
func signum(name string) (Signal, bool) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		if n < 65 {
			return Signal(n), true
		}
		return 0, false
	}
	if len(name) >= 3 && strings.EqualFold(name[:3], "SIG") {
		name = name[3:]
	}
	for i, n := range signalNames {
		if strings.EqualFold(name, n) {
			return Signal(i), true
		}
	}
	switch {
	case strings.EqualFold(name, "IO"):
		return SIGPOLL, true
	case strings.EqualFold(name, "IOT"):
		return SIGABRT, true
	case strings.EqualFold(name, "RTMAX"):
		return sigRTMAX, true
	}
	return 0, false
}

// biWait waits for background children: all of them (status 0), or the
// given PIDs (status of the last; 127 for a PID that is not a child).
func biWait(s *shell, e *bio, args []string) int {
	if len(args) == 1 {
		for _, c := range s.bg {
			s.waitChild(c)
		}
		s.bg = nil
		return 0
	}
	st := 0
	for _, a := range args[1:] {
		pid, err := strconv.Atoi(a)
		if err != nil {
			e.errorf("wait: illegal number: %s", a)
			return 2
		}
		st = 127
		for _, c := range s.bg {
			if c.pid == pid {
				st = s.waitChild(c)
			}
		}
	}
	return st
}

// biExec is handled in call (it needs the redirections); this entry only
// makes `exec` a known built-in.
func biExec(*shell, *bio, []string) int { return 0 }

func biExport(s *shell, e *bio, args []string) int {
	if len(args) == 1 || args[1] == "-p" {
		names := make([]string, 0, len(s.exported))
		for k := range s.exported {
			if _, ok := s.vars[k]; ok {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		var b strings.Builder
		for _, k := range names {
			fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(s.vars[k]))
		}
		io.WriteString(e.out, b.String())
		return 0
	}
	for _, a := range args[1:] {
		name, val, hasVal := strings.Cut(a, "=")
		if !syntax.ValidName(name) {
			e.errorf("export: %s: bad variable name", name)
			return 2
		}
		if hasVal {
			s.setVar(name, val)
		}
		s.exported[name] = true
	}
	return 0
}

func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'"'"'`) + "'" }

func biUnset(s *shell, _ *bio, args []string) int {
	funcs := false
	for _, a := range args[1:] {
		switch a {
		case "-f":
			funcs = true
		case "-v":
			funcs = false
		default:
			if funcs {
				delete(s.funcs, a)
			} else {
				delete(s.vars, a)
				delete(s.exported, a)
			}
		}
	}
	return 0
}

func biCd(s *shell, e *bio, args []string) int {
	dir := s.vars["HOME"]
	if len(args) > 1 {
		dir = args[1]
	}
	p := s.abs(dir)
	fi, err := s.h.fs.Stat(p)
	if err != nil || !fi.Dir {
		reason := "No such file or directory"
		if err == nil {
			reason = "Not a directory"
		}
		e.errorf("cd: can't cd to %s: %s", dir, reason)
		return 2
	}
	s.cwd = p
	s.vars["PWD"] = p
	return 0
}

func biPwd(s *shell, e *bio, _ []string) int {
	fmt.Fprintln(e.out, s.cwd)
	return 0
}

func biExit(s *shell, e *bio, args []string) int {
	st := s.last
	if len(args) > 1 {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			e.errorf("exit: Illegal number: %s", args[1])
			st = 2
		} else {
			st = n & 0xff
		}
	}
	s.exiting = true
	s.last = st
	return st
}

func biShift(s *shell, e *bio, args []string) int {
	n := 1
	if len(args) > 1 {
		v, err := strconv.Atoi(args[1])
		if err != nil || v < 0 {
			e.errorf("shift: Illegal number: %s", args[1])
			return 2
		}
		n = v
	}
	if n > len(s.params) {
		return 1
	}
	s.params = s.params[n:]
	return 0
}

// biSet supports `set -- ARGS` and `set ARGS` (positional parameters).
// Shell options (-e, -u, -x, ...) are not emulated: they are refused rather
// than silently ignored.
func biSet(s *shell, e *bio, args []string) int {
	if len(args) == 1 {
		names := make([]string, 0, len(s.vars))
		for k := range s.vars {
			names = append(names, k)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, k := range names {
			fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(s.vars[k]))
		}
		io.WriteString(e.out, b.String())
		return 0
	}
	rest := args[1:]
	if rest[0] == "--" {
		rest = rest[1:]
	} else if strings.HasPrefix(rest[0], "-") || strings.HasPrefix(rest[0], "+") {
		e.errorf("set: %s: shell options are not emulated by the lab", rest[0])
		return 2
	}
	s.params = append([]string(nil), rest...)
	return 0
}

// biRead reads one line (byte by byte, so it never consumes input beyond
// the line) into variables; -r keeps backslashes.
func biRead(s *shell, e *bio, args []string) int {
	raw := false
	names := args[1:]
	for len(names) > 0 && strings.HasPrefix(names[0], "-") {
		if names[0] == "-r" {
			raw = true
		}
		names = names[1:]
	}
	if len(names) == 0 {
		names = []string{"REPLY"}
	}
	var line []byte
	buf := make([]byte, 1)
	eof := false
	for {
		n, err := e.in.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line = append(line, buf[0])
		}
		if err != nil {
			eof = true
			break
		}
	}
	fields := expand.ReadFields(s.config(), string(line), len(names), raw)
	for i, name := range names {
		v := ""
		if i < len(fields) {
			v = fields[i]
		}
		s.setVar(name, v)
	}
	if eof && len(line) == 0 {
		return 1
	}
	return 0
}

func biReturn(s *shell, e *bio, args []string) int {
	st := s.last
	if len(args) > 1 {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			e.errorf("return: Illegal number: %s", args[1])
			n = 2
		}
		st = n & 0xff
	}
	s.returning = true
	s.last = st
	return st
}

func biBreak(s *shell, e *bio, args []string) int {
	n := 1
	if len(args) > 1 {
		v, err := strconv.Atoi(args[1])
		if err != nil || v < 1 {
			e.errorf("%s: Illegal number: %s", args[0], args[1])
			return 2
		}
		n = v
	}
	if args[0] == "break" {
		s.brk = n
	} else {
		s.cont = n
	}
	return 0
}

func biEval(s *shell, e *bio, args []string) int {
	src := strings.Join(args[1:], " ")
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(src), "")
	if err != nil {
		e.errorf("syntax error: %s", parseErrText(err))
		return 2
	}
	if s.depth >= maxDepth {
		e.errorf("eval: nesting too deep")
		return 2
	}
	s.depth++
	defer func() { s.depth-- }()
	s.last = 0
	s.stmts(f.Stmts, false)
	return s.last
}

// biTest is busybox test / [.
func biTest(_ *shell, e *bio, args []string) int {
	a := args[1:]
	if args[0] == "[" {
		if len(a) == 0 || a[len(a)-1] != "]" {
			e.errorf("missing ]")
			return 2
		}
		a = a[:len(a)-1]
	}
	t := &tester{e: e, args: a}
	ok, err := t.eval()
	if err != nil {
		e.errorf("%s", err.Error())
		return 2
	}
	return b2i(ok)
}

type tester struct {
	e    *bio
	args []string
	i    int
}

type testErr string

func (t testErr) Error() string { return string(t) }

var unaryTestOps = map[string]bool{
	"-e": true, "-f": true, "-d": true, "-s": true, "-r": true, "-w": true, "-x": true,
	"-L": true, "-h": true, "-p": true, "-S": true, "-b": true, "-c": true, "-n": true,
	"-z": true, "-t": true, "-g": true, "-u": true, "-k": true, "-O": true, "-G": true,
}

var binaryTestOps = map[string]bool{
	"=": true, "==": true, "!=": true, "<": true, ">": true, "-eq": true, "-ne": true,
	"-lt": true, "-le": true, "-gt": true, "-ge": true, "-nt": true, "-ot": true, "-ef": true,
}

func (t *tester) eval() (bool, error) {
	a := t.args
	switch n := len(a); {
	case n == 0:
		return false, nil
	case n == 1:
		return a[0] != "", nil
	case n == 2 && a[0] == "!":
		return a[1] == "", nil
	case n == 2 && unaryTestOps[a[0]]:
		return t.unary(a[0], a[1])
	case n == 3 && binaryTestOps[a[1]]:
		return t.binary(a[0], a[1], a[2])
	case n == 3 && a[0] == "!":
		r, err := (&tester{e: t.e, args: a[1:]}).eval()
		return !r, err
	case n == 3 && a[0] == "(" && a[2] == ")":
		return a[1] != "", nil
	case n == 4 && a[0] == "!":
		r, err := (&tester{e: t.e, args: a[1:]}).eval()
		return !r, err
	}
	r, err := t.or()
	if err == nil && t.i < len(t.args) {
		err = testErr(t.args[t.i] + ": unknown operand")
	}
	return r, err
}

func (t *tester) peek() (string, bool) {
	if t.i < len(t.args) {
		return t.args[t.i], true
	}
	return "", false
}

func (t *tester) or() (bool, error) {
	r, err := t.and()
	for err == nil {
		if a, ok := t.peek(); !ok || a != "-o" {
			break
		}
		t.i++
		var r2 bool
		r2, err = t.and()
		r = r || r2
	}
	return r, err
}

func (t *tester) and() (bool, error) {
	r, err := t.not()
	for err == nil {
		if a, ok := t.peek(); !ok || a != "-a" {
			break
		}
		t.i++
		var r2 bool
		r2, err = t.not()
		r = r && r2
	}
	return r, err
}

func (t *tester) not() (bool, error) {
	if a, ok := t.peek(); ok && a == "!" {
		t.i++
		r, err := t.not()
		return !r, err
	}
	return t.primary()
}

func (t *tester) primary() (bool, error) {
	a, ok := t.peek()
	if !ok {
		return false, testErr("argument expected")
	}
	if a == "(" {
		t.i++
		r, err := t.or()
		if err != nil {
			return false, err
		}
		if c, ok := t.peek(); !ok || c != ")" {
			return false, testErr("')' expected")
		}
		t.i++
		return r, nil
	}
	if t.i+2 < len(t.args)+0 && binaryTestOps[t.args[t.i+1]] {
		x, op, y := t.args[t.i], t.args[t.i+1], t.args[t.i+2]
		t.i += 3
		return t.binary(x, op, y)
	}
	if unaryTestOps[a] && t.i+1 < len(t.args) {
		t.i += 2
		return t.unary(a, t.args[t.i-1])
	}
	t.i++
	return a != "", nil
}

func (t *tester) unary(op, x string) (bool, error) {
	switch op {
	case "-n":
		return x != "", nil
	case "-z":
		return x == "", nil
	case "-t", "-L", "-h", "-p", "-S", "-b", "-g", "-u", "-k":
		return false, nil
	case "-O", "-G": // everything belongs to root, and so does the shell
		_, err := t.e.h.fs.Stat(absPath(t.e.cwd, x))
		return err == nil, nil
	}
	p := absPath(t.e.cwd, x)
	fi, err := t.e.h.fs.Stat(p)
	if err != nil {
		return false, nil
	}
	switch op {
	case "-e", "-r", "-w":
		return true, nil
	case "-f":
		return !fi.Dir && p != "/dev/null", nil
	case "-d":
		return fi.Dir, nil
	case "-s":
		return fi.Size > 0, nil
	case "-x":
		return fi.Dir || path.Dir(p) == "/bin" || path.Dir(p) == "/sbin", nil
	case "-c":
		return p == "/dev/null", nil
	}
	return false, nil
}

func (t *tester) binary(x, op, y string) (bool, error) {
	switch op {
	case "=", "==":
		return x == y, nil
	case "!=":
		return x != y, nil
	case "<":
		return x < y, nil
	case ">":
		return x > y, nil
	case "-nt", "-ot", "-ef":
		return false, nil
	}
	a, err := testNum(x)
	if err != nil {
		return false, err
	}
	b, err := testNum(y)
	if err != nil {
		return false, err
	}
	switch op {
	case "-eq":
		return a == b, nil
	case "-ne":
		return a != b, nil
	case "-lt":
		return a < b, nil
	case "-le":
		return a <= b, nil
	case "-gt":
		return a > b, nil
	case "-ge":
		return a >= b, nil
	}
	return false, testErr(op + ": unknown operand")
}

func testNum(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return math.MaxInt64, testErr(s + ": out of range")
		}
		return 0, testErr(s + ": bad number")
	}
	return n, nil
}
