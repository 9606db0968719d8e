package shell

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The text filters of ESXi's busybox that people pipe esxcli, net-stats
// and pktcap-uw output through: head, tail, wc, sort, uniq, cut and a
// small awk. Options follow busybox 1.29; what the lab does not implement
// is refused with a message that says so (never silently ignored).

// readLines reads the named files ("-" or none: stdin) as lines; a file
// that cannot be read is reported and yields status 1.
func readLines(p *Proc, name string, files []string) (lines []string, st int) {
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, f := range files {
		r, err := openInput(p, f)
		if err != nil {
			errorf(p, name, "%s: %s", f, errText(err))
			st = 1
			continue
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	return lines, st
}

// openInput opens a file argument of a filter: "-" is stdin.
func openInput(p *Proc, f string) (io.Reader, error) {
	if f == "-" {
		return p.Stdin(), nil
	}
	b, err := p.host.fs.ReadFile(p.abs(f))
	if err != nil {
		return nil, err
	}
	return strings.NewReader(string(b)), nil
}

func writeLines(p *Proc, lines []string) int {
	w := bufio.NewWriter(p.Stdout())
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return writeFailed()
	}
	return 0
}

// countArg reads -n N, -N and -nN forms.
func countArg(p *Proc, name string, args []string) (n int, files []string, ok bool) {
	n = 10
	for i := 1; i < len(args); i++ {
		a := args[i]
		var v string
		switch {
		case a == "-n" && i+1 < len(args):
			v = args[i+1]
			i++
		case strings.HasPrefix(a, "-n"):
			v = a[2:]
		case len(a) > 1 && a[0] == '-' && a[1] >= '0' && a[1] <= '9':
			v = a[1:]
		case strings.HasPrefix(a, "-") && a != "-":
			errorf(p, name, "the lab's %s takes only -n N", name)
			return 0, nil, false
		default:
			files = append(files, a)
			continue
		}
		k, err := strconv.Atoi(strings.TrimPrefix(v, "+"))
		if err != nil || k < 0 {
			errorf(p, name, "invalid number '%s'", v)
			return 0, nil, false
		}
		n = k
	}
	return n, files, true
}

func cmdHead(_ context.Context, p *Proc, args []string) int {
	n, files, ok := countArg(p, "head", args)
	if !ok {
		return 1
	}
	lines, st := readLines(p, "head", files)
	if n < len(lines) {
		lines = lines[:n]
	}
	if r := writeLines(p, lines); r != 0 {
		return r
	}
	return st
}

func cmdTail(_ context.Context, p *Proc, args []string) int {
	n, files, ok := countArg(p, "tail", args)
	if !ok {
		return 1
	}
	lines, st := readLines(p, "tail", files)
	if n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	if r := writeLines(p, lines); r != 0 {
		return r
	}
	return st
}

func cmdWc(_ context.Context, p *Proc, args []string) int {
	var flags string
	var files []string
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") && a != "-" {
			flags += a[1:]
		} else {
			files = append(files, a)
		}
	}
	if strings.Trim(flags, "lwc") != "" {
		errorf(p, "wc", "the lab's wc takes only -l, -w and -c")
		return 1
	}
	if len(files) > 1 {
		errorf(p, "wc", "the lab's wc reads one input")
		return 1
	}
	lines, st := readLines(p, "wc", files)
	words, bytes := 0, 0
	for _, l := range lines {
		words += len(strings.Fields(l))
		bytes += len(l) + 1
	}
	var out []string
	if flags == "" {
		flags = "lwc"
	}
	for _, c := range "lwc" {
		if !strings.ContainsRune(flags, c) {
			continue
		}
		v := map[rune]int{'l': len(lines), 'w': words, 'c': bytes}[c]
		if len(flags) == 1 {
			out = append(out, strconv.Itoa(v))
		} else {
			out = append(out, fmt.Sprintf("%9d", v))
		}
	}
	line := strings.Join(out, " ")
	if len(files) == 1 && files[0] != "-" {
		line += " " + files[0]
	}
	if r := writeLines(p, []string{line}); r != 0 {
		return r
	}
	return st
}

func cmdSort(_ context.Context, p *Proc, args []string) int {
	var numeric, reverse, unique bool
	key := 0
	var files []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			files = append(files, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'n':
				numeric = true
			case 'r':
				reverse = true
			case 'u':
				unique = true
			case 'k':
				v := a[j+1:]
				if v == "" && i+1 < len(args) {
					v, i = args[i+1], i+1
				}
				k, err := strconv.Atoi(v)
				if err != nil || k < 1 {
					errorf(p, "sort", "the lab's sort takes -k N (a field number)")
					return 1
				}
				key, j = k, len(a)
			default:
				errorf(p, "sort", "the lab's sort takes only -n, -r, -u and -k N")
				return 1
			}
		}
	}
	lines, st := readLines(p, "sort", files)
	field := func(l string) string {
		if key == 0 {
			return l
		}
		f := strings.Fields(l)
		if key > len(f) {
			return ""
		}
		return strings.Join(f[key-1:], " ")
	}
	cmp := func(a, b string) int {
		fa, fb := field(a), field(b)
		if numeric {
			na, _ := strconv.ParseFloat(strings.Fields(fa + " 0")[0], 64)
			nb, _ := strconv.ParseFloat(strings.Fields(fb + " 0")[0], 64)
			switch {
			case na < nb:
				return -1
			case na > nb:
				return 1
			}
			return 0
		}
		return strings.Compare(fa, fb)
	}
	slices.SortStableFunc(lines, func(a, b string) int {
		if reverse {
			return cmp(b, a)
		}
		return cmp(a, b)
	})
	if unique {
		lines = slices.CompactFunc(lines, func(a, b string) bool { return cmp(a, b) == 0 })
	}
	if r := writeLines(p, lines); r != 0 {
		return r
	}
	return st
}

func cmdUniq(_ context.Context, p *Proc, args []string) int {
	var count bool
	var files []string
	for _, a := range args[1:] {
		switch {
		case a == "-c":
			count = true
		case strings.HasPrefix(a, "-") && a != "-":
			errorf(p, "uniq", "the lab's uniq takes only -c")
			return 1
		default:
			files = append(files, a)
		}
	}
	lines, st := readLines(p, "uniq", files)
	var out []string
	for i := 0; i < len(lines); {
		j := i + 1
		for j < len(lines) && lines[j] == lines[i] {
			j++
		}
		if count {
			out = append(out, fmt.Sprintf("%7d %s", j-i, lines[i]))
		} else {
			out = append(out, lines[i])
		}
		i = j
	}
	if r := writeLines(p, out); r != 0 {
		return r
	}
	return st
}

func cmdCut(_ context.Context, p *Proc, args []string) int {
	delim, list := "\t", ""
	var files []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-d" || a == "-f":
			if i+1 >= len(args) {
				errorf(p, "cut", "option requires an argument -- '%c'", a[1])
				return 1
			}
			if a == "-d" {
				delim = args[i+1]
			} else {
				list = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "-d"):
			delim = a[2:]
		case strings.HasPrefix(a, "-f"):
			list = a[2:]
		case strings.HasPrefix(a, "-") && a != "-":
			errorf(p, "cut", "the lab's cut takes only -d C and -f LIST")
			return 1
		default:
			files = append(files, a)
		}
	}
	if list == "" || len(delim) != 1 {
		errorf(p, "cut", "the lab's cut needs -f LIST and a one-character -d")
		return 1
	}
	var want []int
	for _, part := range strings.Split(list, ",") {
		lo, hi, rng := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if rng {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 1 || b < a {
			errorf(p, "cut", "invalid field list '%s'", list)
			return 1
		}
		for k := a; k <= b; k++ {
			want = append(want, k)
		}
	}
	lines, st := readLines(p, "cut", files)
	for i, l := range lines {
		f := strings.Split(l, delim)
		if len(f) == 1 {
			continue // no delimiter: printed whole, as cut does
		}
		var out []string
		for _, k := range want {
			if k <= len(f) {
				out = append(out, f[k-1])
			}
		}
		lines[i] = strings.Join(out, delim)
	}
	if r := writeLines(p, lines); r != 0 {
		return r
	}
	return st
}

// The lab's awk runs programs of rules "PATTERN { print ITEMS }", where
// PATTERN is empty, /RE/, !/RE/, $N ~ /RE/, $N == "S" or NR OP N, and
// ITEMS are $N, $NF, NF, NR and "strings", joined by commas (a space) or
// juxtaposed. Anything else is refused.
type awkRule struct {
	match func(fields []string, line string, nr int) bool
	items [][]string // print arguments, each a list of juxtaposed terms
}

var (
	awkRuleRE = regexp.MustCompile(`^\s*([^{}]*?)\s*\{\s*print\b([^}]*)\}\s*;?\s*`)
	awkTermRE = regexp.MustCompile(`^\s*(\$NF|\$\d+|NF|NR|"[^"]*")`)
	awkNROpRE = regexp.MustCompile(`^NR\s*(==|!=|<=|>=|<|>)\s*(\d+)$`)
	awkFldRE  = regexp.MustCompile(`^\$(\d+)\s*(~|==)\s*(/.*/|"[^"]*")$`)
)

func parseAwk(prog string) ([]awkRule, error) {
	var rules []awkRule
	rest := strings.TrimSpace(prog)
	if rest != "" && !strings.ContainsAny(rest, "{}") {
		rest += " {print}" // a pattern alone prints the matching lines
	}
	for rest != "" {
		m := awkRuleRE.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("the lab's awk runs only rules like '/RE/ {print $1, $3}'")
		}
		rest = strings.TrimSpace(rest[len(m[0]):])
		match, err := awkPattern(m[1])
		if err != nil {
			return nil, err
		}
		var items [][]string
		for _, arg := range strings.Split(m[2], ",") {
			var terms []string
			for s := strings.TrimSpace(arg); s != ""; {
				t := awkTermRE.FindStringSubmatch(s)
				if t == nil {
					return nil, fmt.Errorf("the lab's awk prints only $N, $NF, NF, NR and \"strings\", not %q", s)
				}
				terms = append(terms, t[1])
				s = strings.TrimSpace(s[len(t[0]):])
			}
			items = append(items, terms)
		}
		if len(items) == 1 && len(items[0]) == 0 {
			items = [][]string{{"$0"}}
		}
		rules = append(rules, awkRule{match, items})
	}
	return rules, nil
}

func awkPattern(pat string) (func([]string, string, int) bool, error) {
	regex := func(s string) (*regexp.Regexp, error) { return regexp.Compile(breToRE2(s[1 : len(s)-1])) }
	switch {
	case pat == "":
		return func([]string, string, int) bool { return true }, nil
	case len(pat) >= 2 && pat[0] == '/' && pat[len(pat)-1] == '/':
		re, err := regex(pat)
		return func(_ []string, l string, _ int) bool { return re.MatchString(l) }, err
	case len(pat) >= 3 && pat[0] == '!' && pat[1] == '/' && pat[len(pat)-1] == '/':
		re, err := regex(pat[1:])
		return func(_ []string, l string, _ int) bool { return !re.MatchString(l) }, err
	}
	if m := awkNROpRE.FindStringSubmatch(pat); m != nil {
		n, _ := strconv.Atoi(m[2])
		ops := map[string]func(int) bool{"==": func(x int) bool { return x == n }, "!=": func(x int) bool { return x != n },
			"<": func(x int) bool { return x < n }, ">": func(x int) bool { return x > n },
			"<=": func(x int) bool { return x <= n }, ">=": func(x int) bool { return x >= n }}
		op := ops[m[1]]
		return func(_ []string, _ string, nr int) bool { return op(nr) }, nil
	}
	if m := awkFldRE.FindStringSubmatch(pat); m != nil {
		k, _ := strconv.Atoi(m[1])
		get := func(f []string, l string) string {
			if k == 0 {
				return l
			}
			if k <= len(f) {
				return f[k-1]
			}
			return ""
		}
		if m[2] == "~" && strings.HasPrefix(m[3], "/") {
			re, err := regex(m[3])
			return func(f []string, l string, _ int) bool { return re.MatchString(get(f, l)) }, err
		}
		if m[2] == "==" && strings.HasPrefix(m[3], `"`) {
			s := strings.Trim(m[3], `"`)
			return func(f []string, l string, _ int) bool { return get(f, l) == s }, nil
		}
	}
	return nil, fmt.Errorf("the lab's awk takes patterns /RE/, !/RE/, $N ~ /RE/, $N == \"S\" and NR OP N, not %q", pat)
}

func cmdAwk(_ context.Context, p *Proc, args []string) int {
	sep := ""
	rest := args[1:]
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-F") {
		sep = rest[0][2:]
		rest = rest[1:]
		if sep == "" && len(rest) > 0 {
			sep, rest = rest[0], rest[1:]
		}
	}
	if len(rest) == 0 {
		errorf(p, "awk", "no program given")
		return 1
	}
	rules, err := parseAwk(rest[0])
	if err != nil {
		errorf(p, "awk", "%v", err)
		return 2
	}
	lines, st := readLines(p, "awk", rest[1:])
	var out []string
	for i, l := range lines {
		var f []string
		if sep == "" {
			f = strings.Fields(l)
		} else {
			f = strings.Split(l, sep)
		}
		for _, r := range rules {
			if !r.match(f, l, i+1) {
				continue
			}
			var parts []string
			for _, terms := range r.items {
				var b strings.Builder
				for _, t := range terms {
					b.WriteString(awkTerm(t, f, l, i+1))
				}
				parts = append(parts, b.String())
			}
			out = append(out, strings.Join(parts, " "))
		}
	}
	if r := writeLines(p, out); r != 0 {
		return r
	}
	return st
}

func awkTerm(t string, f []string, line string, nr int) string {
	switch {
	case t == "NF":
		return strconv.Itoa(len(f))
	case t == "NR":
		return strconv.Itoa(nr)
	case t == "$NF":
		if len(f) == 0 {
			return ""
		}
		return f[len(f)-1]
	case strings.HasPrefix(t, `"`):
		return strings.Trim(t, `"`)
	}
	k, _ := strconv.Atoi(t[1:])
	switch {
	case k == 0:
		return line
	case k <= len(f):
		return f[k-1]
	}
	return ""
}
