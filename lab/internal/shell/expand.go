package shell

// Word expansion, arithmetic, globbing and printf formats come from
// mvdan.cc/sh/v3/expand; this file gives the library the shell's variables
// and special parameters ($$ is the virtual PID of the shell, which is why
// the library's interp is not used), runs $(...) through our executor, and
// globs against the host's FS.

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/pattern"
	"mvdan.cc/sh/v3/syntax"
)

// fatalExpansion is an expansion error that makes a non-interactive shell
// exit (${x?msg}).
type fatalExpansion struct{ msg string }

func (e fatalExpansion) Error() string { return e.msg }

var errOutOfMemory = errors.New("out of memory")

// config is what the library needs to expand words as this shell.
func (s *shell) config() *expand.Config {
	return &expand.Config{Env: environ{s}, CmdSubst: s.cmdSubst, ReadDir2: s.readDir}
}

// environ gives the library the shell's variables and special parameters.
type environ struct{ s *shell }

func strVar(v string) expand.Variable {
	return expand.Variable{Set: true, Kind: expand.String, Str: v}
}

func (e environ) Get(name string) expand.Variable {
	s := e.s
	switch name {
	case "$":
		return strVar(strconv.Itoa(s.dollar))
	case "!":
		if s.lastBg == 0 {
			return expand.Variable{}
		}
		return strVar(strconv.Itoa(s.lastBg))
	case "?":
		return strVar(strconv.Itoa(s.last))
	case "#":
		return strVar(strconv.Itoa(len(s.params)))
	case "@", "*":
		// Never nil: the library takes a nil list for "not a list", and
		// "$@" would then be one empty field instead of none.
		return expand.Variable{Set: true, Kind: expand.Indexed, List: append([]string{}, s.params...)}
	case "0":
		return strVar(s.arg0)
	case "-":
		return strVar("")
	}
	if user, ok := strings.CutPrefix(name, "HOME "); ok {
		// ~USER. Only root exists (its home is / on ESXi); any other stays
		// as written, as in ash, instead of the library asking the lab's
		// own machine for the user.
		if user == "root" {
			return strVar("/")
		}
		return strVar("~" + user)
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n >= 1 && n <= len(s.params) {
			return strVar(s.params[n-1])
		}
		return expand.Variable{}
	}
	v, ok := s.vars[name]
	if !ok {
		return expand.Variable{}
	}
	vr := strVar(v)
	vr.Exported = s.exported[name]
	return vr
}

func (e environ) Each(fn func(string, expand.Variable) bool) {
	for k := range e.s.vars {
		if !fn(k, e.Get(k)) {
			return
		}
	}
}

// Set is ${x=...} and arithmetic assignment.
func (e environ) Set(name string, vr expand.Variable) error {
	if !vr.IsSet() {
		delete(e.s.vars, name)
		return nil
	}
	if e.s.setVar(name, vr.String()); e.s.exiting {
		return errOutOfMemory
	}
	return nil
}

// unescaped returns w with the backslash escapes and the { of its unquoted
// literals turned into single-quoted parts. expand.Literal keeps the
// backslash of an unquoted `a\ b` (ash removes it), and expand.Fields does
// brace expansion, which ash does not have. Words of unquoted ${x:-WORD}
// forms get the same treatment, their patterns (${x%PAT}) do not.
func unescaped(w *syntax.Word) *syntax.Word {
	if w == nil {
		return nil
	}
	out := &syntax.Word{Parts: make([]syntax.WordPart, 0, len(w.Parts))}
	for _, part := range w.Parts {
		switch x := part.(type) {
		case *syntax.Lit:
			out.Parts = appendUnescaped(out.Parts, x.Value)
			continue
		case *syntax.DblQuoted:
			if len(x.Parts) > 1 && slices.ContainsFunc(x.Parts, isAt) {
				// "x$@y": the library splits "$@" only when it is alone
				// in its quotes; "x""$@""y" means the same.
				for _, p := range x.Parts {
					out.Parts = append(out.Parts, &syntax.DblQuoted{Parts: []syntax.WordPart{p}})
				}
				continue
			}
		case *syntax.ParamExp:
			if x.Exp != nil && x.Exp.Op != syntax.RemSmallPrefix && x.Exp.Op != syntax.RemLargePrefix &&
				x.Exp.Op != syntax.RemSmallSuffix && x.Exp.Op != syntax.RemLargeSuffix {
				y, e := *x, *x.Exp
				e.Word = unescaped(e.Word)
				y.Exp = &e
				part = &y
			}
		}
		out.Parts = append(out.Parts, part)
	}
	return out
}

func isAt(p syntax.WordPart) bool {
	pe, ok := p.(*syntax.ParamExp)
	return ok && pe.Param != nil && pe.Param.Value == "@" && pe.Exp == nil && !pe.Length
}

func appendUnescaped(parts []syntax.WordPart, v string) []syntax.WordPart {
	for v != "" {
		i := strings.IndexAny(v, `\{`)
		if i < 0 || v[i] == '\\' && i == len(v)-1 { // a trailing backslash stays
			return append(parts, &syntax.Lit{Value: v})
		}
		if i > 0 {
			parts = append(parts, &syntax.Lit{Value: v[:i]})
		}
		n := 1
		if v[i] == '\\' {
			_, size := utf8.DecodeRuneInString(v[i+1:])
			i, n = i+1, size
		}
		parts = append(parts, &syntax.SglQuoted{Value: v[i : i+n]})
		v = v[i+n:]
	}
	return parts
}

func unescapedAll(words []*syntax.Word) []*syntax.Word {
	out := make([]*syntax.Word, len(words))
	for i, w := range words {
		out[i] = unescaped(w)
	}
	return out
}

// expandFields expands command arguments: fields split on IFS, globbed.
func (s *shell) expandFields(words []*syntax.Word) ([]string, error) {
	f, err := expand.Fields(s.config(), unescapedAll(words)...)
	return f, s.expandErr(err)
}

// expandString expands a word without field splitting or globbing
// (assignments, redirection targets, case words).
func (s *shell) expandString(w *syntax.Word) (string, error) {
	str, err := expand.Literal(s.config(), unescaped(w))
	return str, s.expandErr(err)
}

// expandPattern expands a case pattern: quoted parts match literally.
func (s *shell) expandPattern(w *syntax.Word) (string, error) {
	pat, err := expand.Pattern(s.config(), w)
	return pat, s.expandErr(err)
}

// expandErr turns the library's errors into ash's messages.
func (s *shell) expandErr(err error) error {
	if err == nil || s.exiting {
		return err
	}
	var ue expand.UnsetParameterError
	if errors.As(err, &ue) { // ${x?} ${x:?}
		msg := ue.Message
		if msg == "" { // busybox's varunset()
			msg = "parameter not set"
			if ue.Node.Exp != nil && ue.Node.Exp.Op == syntax.ErrorUnsetOrNull {
				msg += " or null"
			}
		}
		return fatalExpansion{ue.Node.Param.Value + ": " + msg}
	}
	if err.Error() == "division by zero" {
		return errors.New("divide by zero")
	}
	return err
}

// matchPattern reports whether str matches the shell pattern pat as a whole.
func matchPattern(pat, str string) bool {
	re, err := pattern.Regexp(pat, pattern.EntireString)
	if err != nil {
		return pat == str
	}
	return regexp.MustCompile(re).MatchString(str)
}

// readDir lists a directory of the host's FS for globbing.
func (s *shell) readDir(name string) ([]fs.DirEntry, error) {
	infos, err := s.h.fs.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		out[i] = fs.FileInfoToDirEntry(fileInfo{fi})
	}
	return out, nil
}

// fileInfo is a FileInfo as an fs.FileInfo.
type fileInfo struct{ fi FileInfo }

func (f fileInfo) Name() string       { return f.fi.Name }
func (f fileInfo) Size() int64        { return int64(f.fi.Size) }
func (f fileInfo) ModTime() time.Time { return f.fi.ModTime }
func (f fileInfo) IsDir() bool        { return f.fi.Dir }
func (f fileInfo) Sys() any           { return nil }

func (f fileInfo) Mode() fs.FileMode {
	if f.fi.Dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// cmdSubst runs $(...) in a forked child and copies its output to w (the
// library removes the trailing newlines).
func (s *shell) cmdSubst(w io.Writer, cs *syntax.CmdSubst) error {
	r, pw := newPipe()
	t := s.curFDs().clone()
	t.set(1, pw)
	child, sub := s.fork(t)
	s.h.spawn(child, func() int { sub.stmts(cs.Stmts, true); return sub.last })
	stop := context.AfterFunc(s.ctx(), r.unref)
	io.Copy(w, io.LimitReader(r.r, maxSubstOutput)) //nolint:errcheck // a failed read ends the output, as in ash
	stop()
	r.unref()
	s.substStatus = s.waitChild(child)
	s.last = s.substStatus
	return nil
}
