package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// maxSubstOutput bounds what one command substitution collects.
const maxSubstOutput = 16 << 20

// maxDepth bounds nested shells and function calls within one process tree
// walk, so a script cannot recurse without end.
const maxDepth = 100

// shell interprets a parsed script as busybox ash does, as process p.
type shell struct {
	h        *Host
	p        *Proc
	dollar   int // $$: the PID of the shell that was invoked, kept by subshells
	arg0     string
	params   []string
	vars     map[string]string
	exported map[string]bool
	funcs    map[string]*syntax.Stmt
	last     int // $?
	lastBg   int // $!; 0 when no background job was started
	bg       []*Proc
	cwd      string
	depth    int

	substStatus int // status of the last $(...) of the current command, -1 when none

	exiting   bool // exit, exec, or a fatal error: stop evaluating
	returning bool
	brk, cont int
}

func newShell(h *Host, p *Proc, dollar int, arg0 string, params []string) *shell {
	s := &shell{
		h: h, p: p, dollar: dollar, arg0: arg0, params: params,
		vars: map[string]string{}, exported: map[string]bool{}, funcs: map[string]*syntax.Stmt{},
		cwd: "/",
	}
	p.mu.Lock()
	if p.cwd != "" {
		s.cwd = p.cwd
	}
	for k, v := range p.env {
		s.vars[k] = v
		s.exported[k] = true
	}
	p.mu.Unlock()
	for k, v := range map[string]string{"PATH": "/bin:/sbin", "HOME": "/", "SHELL": "/bin/sh"} {
		if _, ok := s.vars[k]; !ok {
			s.vars[k] = v
			s.exported[k] = true
		}
	}
	s.vars["PWD"] = s.cwd
	return s
}

func (s *shell) ctx() context.Context { return s.p.ctx }

// stopped reports whether evaluation of the current list must stop.
func (s *shell) stopped() bool {
	return s.exiting || s.returning || s.brk > 0 || s.cont > 0 || s.p.ctx.Err() != nil
}

// runScript parses and runs a whole script as the last thing this process
// does, and returns its status.
func (s *shell) runScript(script string) int {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(script), "")
	if err != nil {
		s.errorf("syntax error: %s", parseErrText(err))
		return 2
	}
	s.stmts(f.Stmts, true)
	return s.last
}

func parseErrText(err error) string {
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		return pe.Text
	}
	var le syntax.LangError
	if errors.As(err, &le) {
		return le.Feature + " is not POSIX"
	}
	return err.Error()
}

// errorf prints "sh: MSG" on the shell's stderr.
func (s *shell) errorf(format string, args ...any) {
	fmt.Fprintf(s.p.Stderr(), "sh: "+format+"\n", args...)
}

// stmts runs a list; tail means the process exits after it, so its last
// simple command replaces the shell (ash's EV_EXIT: `sh -c 'a; b'` runs b
// with the shell's PID).
func (s *shell) stmts(list []*syntax.Stmt, tail bool) {
	for i, x := range list {
		if s.stopped() {
			return
		}
		s.stmt(x, tail && i == len(list)-1)
	}
}

func (s *shell) stmt(x *syntax.Stmt, tail bool) {
	if x.Background {
		s.background(x)
		s.last = 0
		return
	}
	if x.Negated {
		st := s.cmd(x.Cmd, x.Redirs, false)
		if !s.exiting {
			s.last = b2i(st != 0)
		}
		return
	}
	st := s.cmd(x.Cmd, x.Redirs, tail)
	s.last = st
}

func b2i(b bool) int {
	if b {
		return 0
	}
	return 1
}

// cmd runs one command with the statement's redirections.
func (s *shell) cmd(c syntax.Command, redirs []*syntax.Redirect, tail bool) int {
	if c == nil { // only redirections: files are created, nothing runs
		t := s.curFDs().clone()
		err := s.redirect(&t, redirs)
		t.release()
		if err != nil {
			return 2
		}
		return 0
	}
	if ce, ok := c.(*syntax.CallExpr); ok {
		return s.call(ce, redirs, tail)
	}
	if len(redirs) > 0 {
		// Compound command with redirections: applied to the shell for
		// the duration of the command, then restored.
		t := s.curFDs().clone()
		if err := s.redirect(&t, redirs); err != nil {
			t.release()
			return 2
		}
		old := s.p.swapFDs(t)
		defer func() { s.p.swapFDs(old).release() }()
	}
	switch c := c.(type) {
	case *syntax.Block:
		s.stmts(c.Stmts, tail)
		return s.last
	case *syntax.Subshell:
		if tail {
			s.stmts(c.Stmts, true)
			return s.last
		}
		return s.forkRun(func(sub *shell) { sub.stmts(c.Stmts, true) })
	case *syntax.BinaryCmd:
		switch c.Op {
		case syntax.AndStmt, syntax.OrStmt:
			s.stmt(c.X, false)
			if s.stopped() {
				return s.last
			}
			if (s.last == 0) == (c.Op == syntax.AndStmt) {
				s.stmt(c.Y, tail)
			}
			return s.last
		case syntax.Pipe:
			return s.pipeline(c)
		}
	case *syntax.IfClause:
		return s.ifClause(c, tail)
	case *syntax.WhileClause:
		return s.whileClause(c)
	case *syntax.ForClause:
		return s.forClause(c)
	case *syntax.CaseClause:
		return s.caseClause(c, tail)
	case *syntax.FuncDecl:
		if c.Name != nil {
			s.funcs[c.Name.Value] = c.Body
		}
		return 0
	}
	s.errorf("syntax error: unsupported construct")
	return 2
}

func (s *shell) ifClause(c *syntax.IfClause, tail bool) int {
	for ; c != nil; c = c.Else {
		if len(c.Cond) == 0 { // else
			s.stmts(c.Then, tail)
			return s.last
		}
		s.stmts(c.Cond, false)
		if s.stopped() {
			return s.last
		}
		if s.last == 0 {
			s.stmts(c.Then, tail)
			return s.last
		}
	}
	s.last = 0
	return 0
}

// loopBody runs one iteration and reports whether the loop must end.
func (s *shell) loopBody(body []*syntax.Stmt) bool {
	s.stmts(body, false)
	if s.brk > 0 {
		s.brk--
		return true
	}
	if s.cont > 0 {
		s.cont--
		return s.cont > 0 || s.stopped()
	}
	return s.stopped()
}

func (s *shell) whileClause(c *syntax.WhileClause) int {
	st := 0
	for {
		s.stmts(c.Cond, false)
		if s.stopped() {
			break
		}
		if (s.last == 0) == c.Until {
			break
		}
		end := s.loopBody(c.Do)
		st = s.last
		if end {
			break
		}
	}
	s.last = st
	return st
}

func (s *shell) forClause(c *syntax.ForClause) int {
	wi, ok := c.Loop.(*syntax.WordIter)
	if !ok {
		s.errorf("syntax error: unsupported for loop")
		return 2
	}
	items := s.params
	if wi.InPos.IsValid() {
		var err error
		if items, err = s.expandFields(wi.Items); err != nil {
			return s.expandFailed(err)
		}
	}
	st := 0
	for _, it := range items {
		s.setVar(wi.Name.Value, it)
		end := s.loopBody(c.Do)
		st = s.last
		if end {
			break
		}
	}
	s.last = st
	return st
}

func (s *shell) caseClause(c *syntax.CaseClause, tail bool) int {
	w, err := s.expandString(c.Word)
	if err != nil {
		return s.expandFailed(err)
	}
	for _, it := range c.Items {
		for _, pw := range it.Patterns {
			pat, err := s.expandPattern(pw)
			if err != nil {
				return s.expandFailed(err)
			}
			if matchPattern(pat, w) {
				s.stmts(it.Stmts, tail)
				return s.last
			}
		}
	}
	s.last = 0
	return 0
}

// call runs a simple command.
func (s *shell) call(ce *syntax.CallExpr, redirs []*syntax.Redirect, tail bool) int {
	s.substStatus = -1
	fields, err := s.expandFields(ce.Args)
	if err != nil {
		return s.expandFailed(err)
	}
	assigns := make([][2]string, 0, len(ce.Assigns))
	for _, a := range ce.Assigns {
		v := ""
		if a.Value != nil {
			if v, err = s.expandString(a.Value); err != nil {
				return s.expandFailed(err)
			}
		}
		assigns = append(assigns, [2]string{a.Name.Value, v})
	}
	if len(fields) == 0 {
		for _, a := range assigns {
			s.setVar(a[0], a[1])
		}
		t := s.curFDs().clone()
		err := s.redirect(&t, redirs)
		t.release()
		if err != nil {
			return 2
		}
		if s.substStatus >= 0 {
			return s.substStatus
		}
		return 0
	}
	name := fields[0]
	if name == "exec" {
		return s.execBuiltin(fields, assigns, redirs)
	}
	if b, ok := builtins[name]; ok {
		if specialBuiltins[name] {
			for _, a := range assigns {
				s.setVar(a[0], a[1])
			}
		}
		t := s.curFDs().clone()
		defer func() { t.release() }()
		if err := s.redirect(&t, redirs); err != nil {
			return 2
		}
		return b(s, s.envFor(&t, "sh"), fields)
	}
	if fn, ok := s.funcs[name]; ok {
		return s.callFunc(fn, fields, redirs)
	}
	cmd := s.h.lookupExternal(name)
	t := s.curFDs().clone()
	if err := s.redirect(&t, redirs); err != nil {
		t.release()
		return 2
	}
	env := s.environ()
	for _, a := range assigns {
		env[a[0]] = a[1]
	}
	if tail {
		return s.execInPlace(fields, t, env, cmd)
	}
	child := s.h.procs.newProc(s.h, s.h.ctx, s.p.pid, fields, t)
	child.env = env
	child.cwd = s.cwd
	s.h.spawn(child, func() int { return cmd(child.ctx, child, fields) })
	return s.waitChild(child)
}

// execBuiltin is `exec`: with a command, the command replaces the shell
// (same PID, the process's command line becomes the command's); without,
// its redirections apply to the shell from now on.
func (s *shell) execBuiltin(fields []string, assigns [][2]string, redirs []*syntax.Redirect) int {
	t := s.curFDs().clone()
	if err := s.redirect(&t, redirs); err != nil {
		t.release()
		return 2
	}
	if len(fields) == 1 {
		s.p.setFDs(t)
		return 0
	}
	argv := fields[1:]
	env := s.environ()
	for _, a := range assigns {
		env[a[0]] = a[1]
	}
	return s.execInPlace(argv, t, env, s.h.lookupExternal(argv[0]))
}

// execInPlace replaces the shell process with a command, keeping its PID.
func (s *shell) execInPlace(argv []string, t fdTable, env map[string]string, cmd Command) int {
	s.p.exec(argv)
	s.p.mu.Lock()
	s.p.env = env
	s.p.cwd = s.cwd
	s.p.mu.Unlock()
	s.p.setFDs(t)
	s.exiting = true
	s.last = cmd(s.p.ctx, s.p, argv)
	return s.last
}

func (s *shell) callFunc(body *syntax.Stmt, args []string, redirs []*syntax.Redirect) int {
	if s.depth >= maxDepth {
		s.errorf("%s: function nesting too deep", args[0])
		return 2
	}
	saved := s.params
	s.params = args[1:]
	s.depth++
	defer func() {
		s.params = saved
		s.depth--
		s.returning = false
	}()
	x := *body
	x.Redirs = append(cloneRedirs(body.Redirs), redirs...)
	s.stmt(&x, false)
	return s.last
}

func cloneRedirs(r []*syntax.Redirect) []*syntax.Redirect {
	return append([]*syntax.Redirect(nil), r...)
}

// forkRun runs fn in a forked subshell (a new process with the shell's
// command line) and waits for it.
func (s *shell) forkRun(fn func(sub *shell)) int {
	child, sub := s.fork(s.curFDs().clone())
	s.h.spawn(child, func() int { fn(sub); return sub.last })
	return s.waitChild(child)
}

// fork creates a child process that is a copy of the shell; t becomes its
// descriptors.
func (s *shell) fork(t fdTable) (*Proc, *shell) {
	child := s.h.procs.newProc(s.h, s.h.ctx, s.p.pid, s.p.Cmdline(), t)
	child.env = s.environ()
	child.cwd = s.cwd
	sub := &shell{
		h: s.h, p: child, dollar: s.dollar, arg0: s.arg0, params: s.params,
		vars: maps.Clone(s.vars), exported: maps.Clone(s.exported), funcs: maps.Clone(s.funcs),
		last: s.last, lastBg: s.lastBg, cwd: s.cwd, depth: s.depth + 1,
	}
	return child, sub
}

func (s *shell) waitChild(c *Proc) int {
	select {
	case <-c.done:
		return c.exitStatus()
	case <-s.ctx().Done():
		return 128 + int(SIGKILL)
	}
}

// background starts `x &`: a child whose stdin is /dev/null unless the
// statement redirects it (POSIX, for shells without job control).
func (s *shell) background(x *syntax.Stmt) {
	t := s.curFDs().clone()
	t.set(0, devNull())
	child, sub := s.fork(t)
	y := *x
	y.Background = false
	s.h.spawn(child, func() int { sub.stmt(&y, true); return sub.last })
	s.lastBg = child.pid
	s.bg = append(s.bg, child)
}

// pipeline runs every element in its own process, connected by pipes, and
// returns the status of the last one.
func (s *shell) pipeline(c *syntax.BinaryCmd) int {
	var elems []*syntax.Stmt
	var flatten func(x *syntax.Stmt)
	flatten = func(x *syntax.Stmt) {
		if b, ok := x.Cmd.(*syntax.BinaryCmd); ok && b.Op == syntax.Pipe && !x.Negated && len(x.Redirs) == 0 && !x.Background {
			flatten(b.X)
			flatten(b.Y)
			return
		}
		elems = append(elems, x)
	}
	flatten(c.X)
	flatten(c.Y)
	base := s.curFDs()
	var prevR *ofile
	children := make([]*Proc, 0, len(elems))
	for i, el := range elems {
		t := base.clone()
		if prevR != nil {
			t.set(0, prevR)
			prevR = nil
		}
		if i < len(elems)-1 {
			r, w := newPipe()
			t.set(1, w)
			prevR = r
		}
		child, sub := s.fork(t)
		s.h.spawn(child, func() int { sub.stmt(el, true); return sub.last })
		children = append(children, child)
	}
	st := 0
	for _, ch := range children {
		st = s.waitChild(ch)
	}
	return st
}

// curFDs is the shell process's descriptor table, without references.
func (s *shell) curFDs() fdTable {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.p.fds
}

// swapFDs installs t as the process's descriptors and returns the old table
// (whose references the caller now holds).
func (p *Proc) swapFDs(t fdTable) fdTable {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return t
	}
	old := p.fds
	p.fds = t
	return old
}

// environ is the environment a child gets: the exported variables.
func (s *shell) environ() map[string]string {
	env := make(map[string]string)
	for k := range s.exported {
		if v, ok := s.vars[k]; ok {
			env[k] = v
		}
	}
	return env
}

// maxVar bounds a variable's size: beyond it the shell dies as busybox
// does when malloc fails ("sh: out of memory"), instead of eating the lab's
// memory.
const maxVar = 16 << 20

func (s *shell) setVar(name, value string) {
	if len(value) > maxVar {
		s.errorf("out of memory")
		s.exiting = true
		s.last = 2
		return
	}
	s.vars[name] = value
}

// abs resolves a path against the shell's working directory.
func (s *shell) abs(p string) string { return absPath(s.cwd, p) }

func absPath(cwd, p string) string {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return path.Join(cwd, p)
}

// redirect applies redirections to t, left to right. On failure it prints
// ash's message on t's stderr and returns the error.
func (s *shell) redirect(t *fdTable, redirs []*syntax.Redirect) error {
	for _, r := range redirs {
		if err := s.redirectOne(t, r); err != nil {
			w := guardWriter{s.p, t[2]}
			fmt.Fprintf(w, "sh: %s\n", err.Error())
			return err
		}
	}
	return nil
}

func (s *shell) redirectOne(t *fdTable, r *syntax.Redirect) error {
	n := -1
	if r.N != nil {
		v, err := strconv.Atoi(r.N.Value)
		if err != nil || v < 0 || v >= maxFD {
			return fmt.Errorf("%s: bad file descriptor", r.N.Value)
		}
		n = v
	}
	def := func(d int) int {
		if n < 0 {
			return d
		}
		return n
	}
	switch r.Op {
	case syntax.Hdoc, syntax.DashHdoc:
		body, err := s.heredoc(r)
		if err != nil {
			return err
		}
		t.set(def(0), newOfile(bytes.NewReader([]byte(body)), nil, nil))
		return nil
	}
	target, err := s.expandString(r.Word)
	if err != nil {
		return err
	}
	switch r.Op {
	case syntax.RdrOut, syntax.ClbOut, syntax.AppOut:
		f, err := s.h.fs.openWrite(s.abs(target), r.Op == syntax.AppOut)
		if err != nil {
			return fmt.Errorf("can't create %s: %s", target, ashErr(err, "nonexistent directory"))
		}
		t.set(def(1), f)
	case syntax.RdrIn:
		f, err := s.h.fs.openRead(s.abs(target))
		if err != nil {
			return fmt.Errorf("can't open %s: %s", target, ashErr(err, "no such file"))
		}
		t.set(def(0), f)
	case syntax.RdrInOut:
		f, err := s.h.fs.openWrite(s.abs(target), true)
		if err != nil {
			return fmt.Errorf("can't create %s: %s", target, ashErr(err, "nonexistent directory"))
		}
		g, _ := s.h.fs.openRead(s.abs(target))
		f.r = g.r
		t.set(def(0), f)
	case syntax.DplOut, syntax.DplIn:
		d := def(1)
		if r.Op == syntax.DplIn {
			d = def(0)
		}
		if target == "-" {
			t.set(d, nil)
			return nil
		}
		src, err := strconv.Atoi(target)
		if err != nil || src < 0 || src >= maxFD {
			return fmt.Errorf("%s: bad file descriptor", target)
		}
		if t[src] == nil {
			return fmt.Errorf("%d: bad file descriptor", src)
		}
		if src != d {
			t.set(d, t[src].ref())
		}
	default:
		return fmt.Errorf("unsupported redirection %s", r.Op)
	}
	return nil
}

// ashErr is busybox ash's errmsg(): a fixed text for ENOENT, strerror else.
func ashErr(err error, enoent string) string {
	if errors.Is(err, errNotExist) {
		return enoent
	}
	return errText(err)
}

func (s *shell) heredoc(r *syntax.Redirect) (string, error) {
	if r.Hdoc == nil {
		return "", nil
	}
	quoted := false
	for _, part := range r.Word.Parts {
		switch part.(type) {
		case *syntax.SglQuoted, *syntax.DblQuoted:
			quoted = true
		case *syntax.Lit:
			if strings.Contains(part.(*syntax.Lit).Value, `\`) {
				quoted = true
			}
		}
	}
	var body string
	if quoted {
		var b strings.Builder
		for _, part := range r.Hdoc.Parts {
			if l, ok := part.(*syntax.Lit); ok {
				b.WriteString(l.Value)
			}
		}
		body = b.String()
	} else {
		var err error
		if body, err = expand.Document(s.config(), r.Hdoc); err != nil {
			return "", s.expandErr(err)
		}
	}
	if r.Op == syntax.DashHdoc {
		lines := strings.Split(body, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimLeft(l, "\t")
		}
		body = strings.Join(lines, "\n")
	}
	return body, nil
}

// guardWriter writes to an open file on behalf of p, failing once p is dead.
type guardWriter struct {
	p *Proc
	f *ofile
}

func (g guardWriter) Write(b []byte) (int, error) {
	if g.p.isDead() {
		return 0, errProcessGone
	}
	if g.f == nil || g.f.w == nil {
		return 0, errors.New("write: bad file descriptor")
	}
	return writeOrSIGPIPE(g.p, g.f, b)
}

type guardReader struct {
	p *Proc
	f *ofile
}

func (g guardReader) Read(b []byte) (int, error) {
	if g.p.isDead() {
		return 0, errProcessGone
	}
	if g.f == nil || g.f.r == nil {
		return 0, errors.New("read: bad file descriptor")
	}
	return g.f.r.Read(b)
}

func (s *shell) expandFailed(err error) int {
	if s.exiting { // out of memory: said so already
		return s.last
	}
	s.errorf("%s", err.Error())
	var fe fatalExpansion
	if errors.As(err, &fe) {
		s.exiting = true // ${x?} in a non-interactive shell exits it
		s.last = 2
		return 2
	}
	return 1
}
