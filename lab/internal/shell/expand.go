package shell

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// fatalExpansion is an expansion error that makes a non-interactive shell
// exit (${x?msg}).
type fatalExpansion struct{ msg string }

func (e fatalExpansion) Error() string { return e.msg }

// piece is a run of text produced while expanding a word.
type piece struct {
	s      string
	quoted bool // quoted text: never split, glob characters are literal
	split  bool // result of an unquoted expansion: subject to field splitting
	brk    bool // field break between "$@" elements
}

// field is one word after splitting, with its glob pattern.
type field struct {
	s, pattern string
	meta       bool // has unquoted glob characters
}

func (s *shell) expandFields(words []*syntax.Word) ([]string, error) {
	var out []string
	for _, w := range words {
		ps, err := s.wordPieces(w, false)
		if err != nil {
			return nil, err
		}
		for _, f := range s.splitPieces(ps) {
			if f.meta {
				if m := s.glob(f.pattern); len(m) > 0 {
					out = append(out, m...)
					continue
				}
			}
			out = append(out, f.s)
		}
	}
	return out, nil
}

// expandString expands a word without field splitting or globbing
// (assignments, redirection targets, case words).
func (s *shell) expandString(w *syntax.Word) (string, error) {
	if w == nil {
		return "", nil
	}
	ps, err := s.wordPieces(w, false)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, p := range ps {
		if p.brk && i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.s)
	}
	return b.String(), nil
}

// expandPattern expands a word into a pattern: quoted parts match literally.
func (s *shell) expandPattern(w *syntax.Word) (string, error) {
	if w == nil {
		return "", nil
	}
	ps, err := s.wordPieces(w, false)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range ps {
		if p.quoted {
			b.WriteString(escapePattern(p.s))
		} else {
			b.WriteString(p.s)
		}
	}
	return b.String(), nil
}

// expandDouble expands parts as inside double quotes (here-documents).
func (s *shell) expandDouble(parts []syntax.WordPart) (string, error) {
	var ps []piece
	if err := s.dblPieces(&ps, parts, true); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.s)
	}
	return b.String(), nil
}

func escapePattern(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *shell) wordPieces(w *syntax.Word, _ bool) ([]piece, error) {
	var ps []piece
	for i, part := range w.Parts {
		switch x := part.(type) {
		case *syntax.Lit:
			v := x.Value
			if i == 0 && (v == "~" || strings.HasPrefix(v, "~/")) {
				ps = append(ps, piece{s: s.vars["HOME"], quoted: true})
				v = v[1:]
			}
			unquoteLit(&ps, v)
		case *syntax.SglQuoted:
			ps = append(ps, piece{s: x.Value, quoted: true})
		case *syntax.DblQuoted:
			ps = append(ps, piece{quoted: true}) // "" is a field of its own
			if err := s.dblPieces(&ps, x.Parts, false); err != nil {
				return nil, err
			}
		case *syntax.ParamExp:
			if x.Param != nil && (x.Param.Value == "@" || x.Param.Value == "*") && x.Exp == nil && !x.Length {
				ps = append(ps, piece{s: strings.Join(s.params, " "), split: true})
				continue
			}
			v, err := s.paramValue(x)
			if err != nil {
				return nil, err
			}
			ps = append(ps, piece{s: v, split: true})
		case *syntax.CmdSubst:
			ps = append(ps, piece{s: s.cmdSubst(x), split: true})
		case *syntax.ArithmExp:
			n, err := s.arith(x.X)
			if err != nil {
				return nil, err
			}
			ps = append(ps, piece{s: strconv.FormatInt(n, 10), split: true})
		default:
			return nil, errors.New("syntax error: bad substitution")
		}
	}
	return ps, nil
}

// unquoteLit adds an unquoted literal: a backslash quotes the next character,
// backslash-newline disappears.
func unquoteLit(ps *[]piece, v string) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			if b.Len() > 0 {
				*ps = append(*ps, piece{s: b.String()})
				b.Reset()
			}
			i++
			if v[i] != '\n' {
				*ps = append(*ps, piece{s: string(v[i]), quoted: true})
			}
			continue
		}
		b.WriteByte(v[i])
	}
	if b.Len() > 0 {
		*ps = append(*ps, piece{s: b.String()})
	}
}

// dblPieces expands the parts of a double-quoted string (or of a
// here-document when heredoc is true: `"` is not special there).
func (s *shell) dblPieces(ps *[]piece, parts []syntax.WordPart, heredoc bool) error {
	for _, part := range parts {
		switch x := part.(type) {
		case *syntax.Lit:
			*ps = append(*ps, piece{s: unquoteDbl(x.Value, heredoc), quoted: true})
		case *syntax.ParamExp:
			if x.Param != nil && x.Param.Value == "@" && x.Exp == nil && !x.Length && !heredoc {
				for i, a := range s.params {
					if i > 0 {
						*ps = append(*ps, piece{brk: true, quoted: true})
					}
					*ps = append(*ps, piece{s: a, quoted: true})
				}
				continue
			}
			v, err := s.paramValue(x)
			if err != nil {
				return err
			}
			*ps = append(*ps, piece{s: v, quoted: true})
		case *syntax.CmdSubst:
			*ps = append(*ps, piece{s: s.cmdSubst(x), quoted: true})
		case *syntax.ArithmExp:
			n, err := s.arith(x.X)
			if err != nil {
				return err
			}
			*ps = append(*ps, piece{s: strconv.FormatInt(n, 10), quoted: true})
		default:
			return errors.New("syntax error: bad substitution")
		}
	}
	return nil
}

func unquoteDbl(v string, heredoc bool) string {
	special := "$`\"\\\n"
	if heredoc {
		special = "$`\\\n"
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && strings.IndexByte(special, v[i+1]) >= 0 {
			i++
			if v[i] != '\n' {
				b.WriteByte(v[i])
			}
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// splitPieces joins pieces into fields, splitting unquoted expansion results
// on IFS.
func (s *shell) splitPieces(ps []piece) []field {
	ifs, ok := s.vars["IFS"]
	if !ok {
		ifs = " \t\n"
	}
	var out []field
	var str, pat strings.Builder
	has, meta := false, false
	flush := func() {
		if has {
			out = append(out, field{s: str.String(), pattern: pat.String(), meta: meta})
		}
		str.Reset()
		pat.Reset()
		has, meta = false, false
	}
	for _, p := range ps {
		switch {
		case p.brk:
			flush()
			has = true
		case p.quoted:
			str.WriteString(p.s)
			pat.WriteString(escapePattern(p.s))
			has = true
		case p.split && ifs != "":
			for _, r := range p.s {
				if strings.ContainsRune(ifs, r) {
					flush()
					continue
				}
				str.WriteRune(r)
				pat.WriteRune(r)
				has = true
				meta = meta || strings.ContainsRune("*?[", r)
			}
		default:
			if p.s != "" {
				has = true
			}
			str.WriteString(p.s)
			pat.WriteString(p.s)
			meta = meta || strings.ContainsAny(p.s, "*?[")
		}
	}
	flush()
	return out
}

// glob expands a pathname pattern against the host filesystem, sorted; nil
// when nothing matches.
func (s *shell) glob(pattern string) []string {
	full := pattern
	if !strings.HasPrefix(full, "/") {
		full = strings.TrimSuffix(s.cwd, "/") + "/" + pattern
	}
	pcs := strings.Split(strings.TrimPrefix(full, "/"), "/")
	var out []string
	for _, p := range s.h.fs.paths() {
		if p == "/" {
			continue
		}
		cs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		if len(cs) != len(pcs) {
			continue
		}
		ok := true
		for i := range cs {
			if strings.HasPrefix(cs[i], ".") && !strings.HasPrefix(pcs[i], ".") || !matchPattern(pcs[i], cs[i]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if !strings.HasPrefix(pattern, "/") {
			p = strings.TrimPrefix(strings.TrimPrefix(p, strings.TrimSuffix(s.cwd, "/")), "/")
		}
		out = append(out, p)
	}
	return out
}

// matchPattern reports whether str matches the shell pattern pat (*, ?,
// [...] with ! or ^, backslash escapes), without pathname rules.
func matchPattern(pat, str string) bool {
	p, t := []rune(pat), []rune(str)
	var match func(pi, ti int) bool
	match = func(pi, ti int) bool {
		for pi < len(p) {
			switch p[pi] {
			case '*':
				for pi < len(p) && p[pi] == '*' {
					pi++
				}
				if pi == len(p) {
					return true
				}
				for k := ti; k <= len(t); k++ {
					if match(pi, k) {
						return true
					}
				}
				return false
			case '?':
				if ti >= len(t) {
					return false
				}
				pi++
				ti++
			case '[':
				if ti >= len(t) {
					return false
				}
				ok, next, valid := matchClass(p, pi, t[ti])
				if !valid { // a lone [ is literal
					if t[ti] != '[' {
						return false
					}
					pi++
					ti++
					continue
				}
				if !ok {
					return false
				}
				pi = next
				ti++
			case '\\':
				if pi+1 < len(p) {
					pi++
				}
				fallthrough
			default:
				if ti >= len(t) || p[pi] != t[ti] {
					return false
				}
				pi++
				ti++
			}
		}
		return ti == len(t)
	}
	return match(0, 0)
}

// matchClass matches c against the bracket expression at p[i]; next is the
// index after it; valid is false when there is no closing bracket.
func matchClass(p []rune, i int, c rune) (ok bool, next int, valid bool) {
	j := i + 1
	neg := false
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		neg = true
		j++
	}
	first := true
	for j < len(p) && (first || p[j] != ']') {
		first = false
		lo := p[j]
		if lo == '\\' && j+1 < len(p) {
			j++
			lo = p[j]
		}
		hi := lo
		if j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']' {
			hi = p[j+2]
			j += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
		j++
	}
	if j >= len(p) {
		return false, 0, false
	}
	return ok != neg, j + 1, true
}

// lookupParam returns a parameter's value and whether it is set.
func (s *shell) lookupParam(name string) (string, bool) {
	switch name {
	case "$":
		return strconv.Itoa(s.dollar), true
	case "!":
		if s.lastBg == 0 {
			return "", false
		}
		return strconv.Itoa(s.lastBg), true
	case "?":
		return strconv.Itoa(s.last), true
	case "#":
		return strconv.Itoa(len(s.params)), true
	case "@", "*":
		return strings.Join(s.params, " "), true
	case "0":
		return s.arg0, true
	case "-":
		return "", true
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n >= 1 && n <= len(s.params) {
			return s.params[n-1], true
		}
		return "", false
	}
	v, ok := s.vars[name]
	return v, ok
}

func (s *shell) paramValue(pe *syntax.ParamExp) (string, error) {
	if pe.Param == nil || pe.Excl || pe.Width || pe.Index != nil || pe.Slice != nil || pe.Repl != nil || pe.Names != 0 || len(pe.Modifiers) > 0 || pe.NestedParam != nil {
		return "", errors.New("syntax error: bad substitution")
	}
	name := pe.Param.Value
	v, set := s.lookupParam(name)
	if pe.Length {
		return strconv.Itoa(len([]rune(v))), nil
	}
	if pe.Exp == nil {
		return v, nil
	}
	arg := func() (string, error) { return s.expandString(pe.Exp.Word) }
	null := !set || v == ""
	switch op := pe.Exp.Op; op {
	case syntax.DefaultUnset, syntax.DefaultUnsetOrNull:
		if !set || op == syntax.DefaultUnsetOrNull && null {
			return arg()
		}
		return v, nil
	case syntax.AssignUnset, syntax.AssignUnsetOrNull:
		if !set || op == syntax.AssignUnsetOrNull && null {
			a, err := arg()
			if err != nil {
				return "", err
			}
			s.setVar(name, a)
			return a, nil
		}
		return v, nil
	case syntax.ErrorUnset, syntax.ErrorUnsetOrNull:
		if !set || op == syntax.ErrorUnsetOrNull && null {
			a, err := arg()
			if err != nil {
				return "", err
			}
			if a == "" {
				a = "parameter not set"
				if set {
					a = "parameter null"
				}
			}
			return "", fatalExpansion{name + ": " + a}
		}
		return v, nil
	case syntax.AlternateUnset, syntax.AlternateUnsetOrNull:
		if !set || op == syntax.AlternateUnsetOrNull && null {
			return "", nil
		}
		return arg()
	case syntax.RemSmallPrefix, syntax.RemLargePrefix, syntax.RemSmallSuffix, syntax.RemLargeSuffix:
		pat, err := s.expandPattern(pe.Exp.Word)
		if err != nil {
			return "", err
		}
		return removePattern(v, pat, op), nil
	}
	return "", errors.New("syntax error: bad substitution")
}

func removePattern(v, pat string, op syntax.ParExpOperator) string {
	r := []rune(v)
	switch op {
	case syntax.RemSmallPrefix:
		for i := 0; i <= len(r); i++ {
			if matchPattern(pat, string(r[:i])) {
				return string(r[i:])
			}
		}
	case syntax.RemLargePrefix:
		for i := len(r); i >= 0; i-- {
			if matchPattern(pat, string(r[:i])) {
				return string(r[i:])
			}
		}
	case syntax.RemSmallSuffix:
		for i := len(r); i >= 0; i-- {
			if matchPattern(pat, string(r[i:])) {
				return string(r[:i])
			}
		}
	case syntax.RemLargeSuffix:
		for i := 0; i <= len(r); i++ {
			if matchPattern(pat, string(r[i:])) {
				return string(r[:i])
			}
		}
	}
	return v
}

// arith evaluates $((...)) with 64-bit integers as ash does.
func (s *shell) arith(x syntax.ArithmExpr) (int64, error) {
	switch x := x.(type) {
	case nil:
		return 0, nil
	case *syntax.Word:
		str, err := s.expandString(x)
		if err != nil {
			return 0, err
		}
		return s.arithValue(strings.TrimSpace(str), 0)
	case *syntax.ParenArithm:
		return s.arith(x.X)
	case *syntax.UnaryArithm:
		if x.Op == syntax.Inc || x.Op == syntax.Dec {
			name, err := arithName(x.X)
			if err != nil {
				return 0, err
			}
			old, err := s.arithValue(s.vars[name], 0)
			if err != nil {
				return 0, err
			}
			n := old + 1
			if x.Op == syntax.Dec {
				n = old - 1
			}
			s.setVar(name, strconv.FormatInt(n, 10))
			if x.Post {
				return old, nil
			}
			return n, nil
		}
		v, err := s.arith(x.X)
		if err != nil {
			return 0, err
		}
		switch x.Op {
		case syntax.Not:
			return boolInt(v == 0), nil
		case syntax.BitNegation:
			return ^v, nil
		case syntax.Minus:
			return -v, nil
		case syntax.Plus:
			return v, nil
		}
	case *syntax.BinaryArithm:
		return s.arithBinary(x)
	}
	return 0, errors.New("arithmetic syntax error")
}

func arithName(x syntax.ArithmExpr) (string, error) {
	w, ok := x.(*syntax.Word)
	if !ok || len(w.Parts) != 1 {
		return "", errors.New("arithmetic syntax error")
	}
	l, ok := w.Parts[0].(*syntax.Lit)
	if !ok {
		return "", errors.New("arithmetic syntax error")
	}
	return l.Value, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// arithValue reads a number, or the value of a variable named str.
func (s *shell) arithValue(str string, depth int) (int64, error) {
	if str == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(str, 0, 64); err == nil {
		return n, nil
	}
	if depth < 10 && isName(str) {
		return s.arithValue(strings.TrimSpace(s.vars[str]), depth+1)
	}
	return 0, fmt.Errorf("arithmetic syntax error")
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

func (s *shell) arithBinary(x *syntax.BinaryArithm) (int64, error) {
	switch x.Op {
	case syntax.AndArit, syntax.OrArit:
		a, err := s.arith(x.X)
		if err != nil {
			return 0, err
		}
		if (a != 0) == (x.Op == syntax.OrArit) {
			return boolInt(a != 0), nil
		}
		b, err := s.arith(x.Y)
		return boolInt(b != 0), err
	case syntax.TernQuest:
		c, err := s.arith(x.X)
		if err != nil {
			return 0, err
		}
		col, ok := x.Y.(*syntax.BinaryArithm)
		if !ok || col.Op != syntax.TernColon {
			return 0, errors.New("arithmetic syntax error")
		}
		if c != 0 {
			return s.arith(col.X)
		}
		return s.arith(col.Y)
	case syntax.Assgn, syntax.AddAssgn, syntax.SubAssgn, syntax.MulAssgn, syntax.QuoAssgn, syntax.RemAssgn,
		syntax.AndAssgn, syntax.OrAssgn, syntax.XorAssgn, syntax.ShlAssgn, syntax.ShrAssgn:
		name, err := arithName(x.X)
		if err != nil {
			return 0, err
		}
		v, err := s.arith(x.Y)
		if err != nil {
			return 0, err
		}
		if x.Op != syntax.Assgn {
			old, err := s.arithValue(s.vars[name], 0)
			if err != nil {
				return 0, err
			}
			op := map[syntax.BinAritOperator]syntax.BinAritOperator{
				syntax.AddAssgn: syntax.Add, syntax.SubAssgn: syntax.Sub, syntax.MulAssgn: syntax.Mul,
				syntax.QuoAssgn: syntax.Quo, syntax.RemAssgn: syntax.Rem, syntax.AndAssgn: syntax.And,
				syntax.OrAssgn: syntax.Or, syntax.XorAssgn: syntax.Xor, syntax.ShlAssgn: syntax.Shl, syntax.ShrAssgn: syntax.Shr,
			}[x.Op]
			if v, err = arithOp(op, old, v); err != nil {
				return 0, err
			}
		}
		s.setVar(name, strconv.FormatInt(v, 10))
		return v, nil
	case syntax.Comma:
		if _, err := s.arith(x.X); err != nil {
			return 0, err
		}
		return s.arith(x.Y)
	}
	a, err := s.arith(x.X)
	if err != nil {
		return 0, err
	}
	b, err := s.arith(x.Y)
	if err != nil {
		return 0, err
	}
	return arithOp(x.Op, a, b)
}

func arithOp(op syntax.BinAritOperator, a, b int64) (int64, error) {
	switch op {
	case syntax.Add:
		return a + b, nil
	case syntax.Sub:
		return a - b, nil
	case syntax.Mul:
		return a * b, nil
	case syntax.Quo, syntax.Rem:
		if b == 0 {
			return 0, errors.New("divide by zero")
		}
		if a == -1<<63 && b == -1 {
			return a, nil
		}
		if op == syntax.Quo {
			return a / b, nil
		}
		return a % b, nil
	case syntax.Pow:
		if b < 0 {
			return 0, errors.New("exponent less than 0")
		}
		r := int64(1)
		for ; b > 0 && b < 64; b-- {
			r *= a
		}
		return r, nil
	case syntax.Eql:
		return boolInt(a == b), nil
	case syntax.Neq:
		return boolInt(a != b), nil
	case syntax.Lss:
		return boolInt(a < b), nil
	case syntax.Leq:
		return boolInt(a <= b), nil
	case syntax.Gtr:
		return boolInt(a > b), nil
	case syntax.Geq:
		return boolInt(a >= b), nil
	case syntax.And:
		return a & b, nil
	case syntax.Or:
		return a | b, nil
	case syntax.Xor:
		return a ^ b, nil
	case syntax.Shl:
		return a << (uint64(b) & 63), nil
	case syntax.Shr:
		return a >> (uint64(b) & 63), nil
	}
	return 0, errors.New("arithmetic syntax error")
}
