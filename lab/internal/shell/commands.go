package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// defaultCommands are the programs every emulated host has besides the
// shell built-ins; each runs as a process of its own.
func defaultCommands() map[string]Command {
	cmds := map[string]Command{
		"sh": cmdSh, "cat": cmdCat, "sleep": cmdSleep, "ps": cmdPs, "rm": cmdRm,
		"mkdir": cmdMkdir, "ls": cmdLs, "timeout": cmdTimeout, "uname": cmdUname, "vmware": cmdVmware,
		"date": cmdDate, "hostname": cmdHostname, "grep": cmdGrep, "mv": cmdMv,
		// the filters operators pipe esxcli, net-stats and ps through
		// (VMware KB 2051814 stops captures with ... | awk '{print $1}' | sort -u)
		"head": cmdHead, "tail": cmdTail, "wc": cmdWc, "sort": cmdSort, "uniq": cmdUniq, "cut": cmdCut, "awk": cmdAwk,
	}
	return cmds
}

// binDirs are where a command named by path is looked up.
var binDirs = map[string]bool{"/bin/": true, "/sbin/": true, "/usr/bin/": true, "/usr/sbin/": true}

// lookupExternal returns the command for name, or one that fails like a
// missing program ("sh: NAME: not found", 127).
func (h *Host) lookupExternal(name string) Command {
	if c, ok := h.lookupExternalOK(name); ok {
		return c
	}
	return func(_ context.Context, p *Proc, _ []string) int {
		fmt.Fprintf(p.Stderr(), "sh: %s: not found\n", name)
		return 127
	}
}

func (h *Host) lookupExternalOK(name string) (Command, bool) {
	base := name
	if strings.Contains(name, "/") {
		dir, b := path.Split(name)
		if !binDirs[dir] {
			return nil, false
		}
		base = b
	}
	if c, ok := h.cmds[base]; ok && c != nil {
		return c, true
	}
	if a, ok := applets[base]; ok {
		return func(_ context.Context, p *Proc, args []string) int {
			return a(nil, &bio{h: h, p: p, cwd: p.Cwd(), name: base, in: p.Stdin(), out: p.Stdout(), err: p.Stderr()}, args)
		}, true
	}
	return nil, false
}

// writeFailed is what a busybox tool does when stdout is gone: it dies of
// SIGPIPE (status 141), silently.
func writeFailed() int { return 128 + int(SIGPIPE) }

func errorf(p *Proc, name, format string, args ...any) {
	fmt.Fprintf(p.Stderr(), name+": "+format+"\n", args...)
}

// cmdSh is `sh -c SCRIPT [ARG0 [ARGS]]`, `sh FILE`, or `sh` reading the
// script from stdin; it runs as the new process p.
func cmdSh(_ context.Context, p *Proc, args []string) int {
	var script string
	arg0, params := "sh", []string(nil)
	switch {
	case len(args) >= 2 && args[1] == "-c":
		if len(args) < 3 {
			errorf(p, "sh", "-c requires an argument")
			return 2
		}
		script = args[2]
		if len(args) > 3 {
			arg0, params = args[3], args[4:]
		}
	case len(args) >= 2 && !strings.HasPrefix(args[1], "-"):
		b, err := p.host.fs.ReadFile(p.abs(args[1]))
		if err != nil {
			errorf(p, "sh", "can't open '%s'", args[1])
			return 127
		}
		script, arg0, params = string(b), args[1], args[2:]
	case len(args) == 1 || args[1] == "-s":
		b, err := io.ReadAll(io.LimitReader(p.Stdin(), maxSubstOutput))
		if err != nil && !errors.Is(err, io.EOF) {
			return 2
		}
		script = string(b)
	default:
		errorf(p, "sh", "%s: invalid option", args[1])
		return 2
	}
	return newShell(p.host, p, p.pid, arg0, params).runScript(script)
}

func cmdCat(_ context.Context, p *Proc, args []string) int {
	files := args[1:]
	if len(files) > 0 && files[0] == "--" {
		files = files[1:]
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	st := 0
	for _, f := range files {
		r, err := openInput(p, f)
		if err != nil {
			errorf(p, "cat", "can't open '%s': %s", f, errText(err))
			st = 1
			continue
		}
		if st2 := copyOut(p, r); st2 != 0 {
			return st2
		}
	}
	return st
}

// copyOut copies r to stdout; a failed write ends the tool as SIGPIPE does.
func copyOut(p *Proc, r io.Reader) int {
	buf := make([]byte, 32<<10)
	out := p.Stdout()
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return writeFailed()
			}
		}
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			return 1
		}
	}
}

// parseDuration is busybox sleep's argument: N[.M][smhd].
func parseDuration(a string) (time.Duration, bool) {
	mult := time.Second
	switch {
	case strings.HasSuffix(a, "s"):
		a = a[:len(a)-1]
	case strings.HasSuffix(a, "m"):
		a, mult = a[:len(a)-1], time.Minute
	case strings.HasSuffix(a, "h"):
		a, mult = a[:len(a)-1], time.Hour
	case strings.HasSuffix(a, "d"):
		a, mult = a[:len(a)-1], 24*time.Hour
	}
	f, err := strconv.ParseFloat(a, 64)
	if err != nil || f < 0 || a == "" || strings.ContainsAny(a, "eEnNxX+-") {
		return 0, false
	}
	return time.Duration(f * float64(mult)), true
}

// cmdSleep sleeps until its time is up or the process is killed.
func cmdSleep(ctx context.Context, p *Proc, args []string) int {
	if len(args) < 2 {
		fmt.Fprint(p.Stderr(), "BusyBox v1.29.3 multi-call binary.\n\nUsage: sleep [N]...\n\nPause for a time equal to the total of the args given, where each arg can\nhave an optional suffix of (s)econds, (m)inutes, (h)ours, or (d)ays\n")
		return 1
	}
	var total time.Duration
	for _, a := range args[1:] {
		d, ok := parseDuration(a)
		if !ok {
			errorf(p, "sleep", "invalid number '%s'", a)
			return 1
		}
		total += d
	}
	t := time.NewTimer(total)
	defer t.Stop()
	select {
	case <-t.C:
		return 0
	case <-ctx.Done():
		return 128 + int(SIGKILL)
	}
}

func cmdRm(_ context.Context, p *Proc, args []string) int {
	force, recursive := false, false
	files := args[1:]
	for len(files) > 0 && strings.HasPrefix(files[0], "-") && files[0] != "-" {
		if files[0] == "--" {
			files = files[1:]
			break
		}
		for _, c := range files[0][1:] {
			switch c {
			case 'f':
				force = true
			case 'r', 'R':
				recursive = true
			case 'i':
			default:
				errorf(p, "rm", "invalid option -- '%c'", c)
				return 1
			}
		}
		files = files[1:]
	}
	if len(files) == 0 && !force {
		fmt.Fprint(p.Stderr(), "BusyBox v1.29.3 multi-call binary.\n\nUsage: rm [-irf] FILE...\n\nRemove (unlink) FILEs\n\n\t-i\tAlways prompt before removing\n\t-f\tNever prompt\n\t-R,-r\tRecurse\n")
		return 1
	}
	st := 0
	fs := p.host.fs
	for _, f := range files {
		full := p.abs(f)
		fi, err := fs.Stat(full)
		if err != nil {
			if !force {
				errorf(p, "rm", "can't remove '%s': No such file or directory", f)
				st = 1
			}
			continue
		}
		if fi.Dir {
			if !recursive {
				errorf(p, "rm", "'%s' is a directory", f)
				st = 1
				continue
			}
			var sub []string
			for _, q := range fs.paths() {
				if strings.HasPrefix(q, full+"/") {
					sub = append(sub, q)
				}
			}
			sort.Slice(sub, func(i, j int) bool { return len(sub[i]) > len(sub[j]) })
			for _, q := range append(sub, full) {
				if err := fs.Remove(q, true); err != nil && !force {
					errorf(p, "rm", "can't remove '%s': %s", q, errText(err))
					st = 1
				}
			}
			continue
		}
		if err := fs.Remove(full, false); err != nil && !force {
			errorf(p, "rm", "can't remove '%s': %s", f, errText(err))
			st = 1
		}
	}
	return st
}

const mvUsage = "BusyBox v1.29.3 multi-call binary.\n\nUsage: mv [-fin] SOURCE DEST\nor: mv [-fin] SOURCE... DIRECTORY\n\nRename SOURCE to DEST, or move SOURCE(s) to DIRECTORY\n\n\t-f\tDon't prompt before overwriting\n\t-i\tInteractive, prompt before overwrite\n\t-n\tDon't overwrite an existing file\n"

// cmdMv is busybox 1.29's mv (coreutils/mv.c): rename(2) on the host's FS,
// into DEST when it is a directory. Of -f -i -n the last one counts; -i asks
// on stderr and reads the answer from stdin. -v is in 1.29's option string
// but not its usage text; that ESXi builds it with FEATURE_VERBOSE (it then
// prints 'SRC' -> 'DEST') is an assumption.
func cmdMv(_ context.Context, p *Proc, args []string) int {
	var mode byte
	verbose := false
	rest := args[1:]
	for len(rest) > 0 && len(rest[0]) > 1 && rest[0][0] == '-' {
		a := rest[0]
		rest = rest[1:]
		if a == "--" {
			break
		}
		for _, c := range []byte(a[1:]) {
			switch c {
			case 'f', 'i', 'n':
				mode = c
			case 'v':
				verbose = true
			default:
				fmt.Fprintf(p.Stderr(), "mv: invalid option -- '%c'\n%s", c, mvUsage)
				return 1
			}
		}
	}
	if len(rest) < 2 {
		fmt.Fprint(p.Stderr(), mvUsage)
		return 1
	}
	fsys := p.host.fs
	exists := func(name string) (ok, dir bool) {
		fi, err := fsys.Stat(p.abs(name))
		return err == nil, err == nil && fi.Dir
	}
	last := rest[len(rest)-1]
	_, into := exists(last)
	into = into || len(rest) > 2
	st := 0
	for _, src := range rest[:len(rest)-1] {
		dest := last
		if into {
			base := strings.TrimRight(src, "/")
			if base == "" {
				base = "/"
			}
			dest = strings.TrimSuffix(last, "/") + "/" + path.Base(base)
		}
		if ok, _ := exists(dest); ok {
			if mode == 'n' {
				continue
			}
			if mode == 'i' {
				fmt.Fprintf(p.Stderr(), "mv: overwrite '%s'? ", dest)
				if !askYes(p.Stdin()) {
					continue
				}
			}
		}
		if err := fsys.Rename(p.abs(src), p.abs(dest)); err != nil {
			errorf(p, "mv", "can't rename '%s': %s", src, errText(err))
			st = 1
		}
		if verbose {
			if _, err := fmt.Fprintf(p.Stdout(), "'%s' -> '%s'\n", src, dest); err != nil {
				return writeFailed()
			}
		}
	}
	return st
}

// askYes reads a line; it says yes when its first non-blank character is y
// or Y (busybox bb_ask_y_confirmation).
func askYes(r io.Reader) bool {
	var first byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if first == 0 && b[0] != ' ' && b[0] != '\t' {
				first = b[0] | 0x20
			}
		}
		if err != nil {
			break
		}
	}
	return first == 'y'
}

func cmdMkdir(_ context.Context, p *Proc, args []string) int {
	parents := false
	dirs := args[1:]
	for len(dirs) > 0 && strings.HasPrefix(dirs[0], "-") {
		if dirs[0] == "--" {
			dirs = dirs[1:]
			break
		}
		if strings.Trim(dirs[0][1:], "p") != "" {
			errorf(p, "mkdir", "invalid option -- '%c'", strings.Trim(dirs[0][1:], "p")[0])
			return 1
		}
		parents = true
		dirs = dirs[1:]
	}
	if len(dirs) == 0 {
		fmt.Fprint(p.Stderr(), "BusyBox v1.29.3 multi-call binary.\n\nUsage: mkdir [-m MODE] [-p] DIRECTORY...\n\nCreate DIRECTORY\n\n\t-m MODE\tMode\n\t-p\tNo error if exists; make parent directories as needed\n")
		return 1
	}
	st := 0
	for _, d := range dirs {
		if err := p.host.fs.Mkdir(p.abs(d), parents); err != nil {
			errorf(p, "mkdir", "can't create directory '%s': %s", d, errText(err))
			st = 1
		}
	}
	return st
}

func cmdLs(_ context.Context, p *Proc, args []string) int {
	long, all, dirOnly := false, false, false
	var names []string
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			for _, c := range a[1:] {
				switch c {
				case 'l':
					long = true
				case 'a':
					all = true
				case 'd':
					dirOnly = true
				case '1':
				default:
					errorf(p, "ls", "invalid option -- '%c'", c)
					return 1
				}
			}
			continue
		}
		names = append(names, a)
	}
	if len(names) == 0 {
		names = []string{"."}
	}
	var b strings.Builder
	line := func(fi FileInfo, name string) {
		if !long {
			b.WriteString(name + "\n")
			return
		}
		mode := "-rw-r--r--"
		if fi.Dir {
			mode = "drwxr-xr-x"
		}
		fmt.Fprintf(&b, "%-10s %4d %-8s %-8s %9d %s %s\n", mode, 1, "root", "root", fi.Size, fi.ModTime.UTC().Format("Jan _2 15:04"), name)
	}
	st := 0
	for i, n := range names {
		full := p.abs(n)
		fi, err := p.host.fs.Stat(full)
		if err != nil {
			errorf(p, "ls", "%s: No such file or directory", n)
			st = 1
			continue
		}
		if !fi.Dir || dirOnly {
			line(fi, n)
			continue
		}
		if len(names) > 1 {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString(n + ":\n")
		}
		ents, _ := p.host.fs.ReadDir(full)
		for _, e := range ents {
			if !all && strings.HasPrefix(e.Name, ".") {
				continue
			}
			line(e, e.Name)
		}
	}
	if _, err := io.WriteString(p.Stdout(), b.String()); err != nil {
		return writeFailed()
	}
	return st
}

const timeoutUsage = "BusyBox v1.29.3 multi-call binary.\n\nUsage: timeout [-t SECS] [-s SIG] PROG ARGS\n\nRuns PROG. Sends SIG to it if it is not gone in SECS seconds.\nDefaults: SECS: 10, SIG: TERM.\n"

// cmdTimeout is busybox 1.29's timeout (the one ESXi ships): `timeout [-t
// SECS] [-s SIG] PROG ARGS`. The newer `timeout SECS PROG` form does not
// exist there: SECS is taken as PROG and fails to execute. As in busybox,
// PROG replaces timeout (it keeps timeout's PID) and a separate watcher
// process checks every second and sends SIG when SECS have passed, so the
// exit status is PROG's own (143 when TERM killed it), not 124.
func cmdTimeout(_ context.Context, p *Proc, args []string) int {
	secs, sigName := 10, "TERM"
	i := 1
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if c != 's' && c != 't' {
				fmt.Fprintf(p.Stderr(), "timeout: invalid option -- '%c'\n%s", c, timeoutUsage)
				return 1
			}
			val := a[j+1:]
			if val == "" {
				i++
				if i >= len(args) {
					fmt.Fprintf(p.Stderr(), "timeout: option requires an argument -- '%c'\n%s", c, timeoutUsage)
					return 1
				}
				val = args[i]
			}
			if c == 's' {
				sigName = val
			} else {
				n, err := strconv.Atoi(val)
				if err != nil || n < 0 {
					errorf(p, "timeout", "invalid number '%s'", val)
					return 1
				}
				secs = n
			}
			break
		}
		i++
	}
	sig, ok := signum(sigName)
	if !ok {
		errorf(p, "timeout", "unknown signal '%s'", sigName)
		return 1
	}
	if i >= len(args) {
		fmt.Fprint(p.Stderr(), timeoutUsage)
		return 1
	}
	prog := args[i:]
	h, target := p.host, p.pid
	watcher := h.procs.newProc(h, h.ctx, 0, p.Cmdline(), fdTable{})
	h.spawn(watcher, func() int {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for left := secs; ; {
			select {
			case <-t.C:
			case <-watcher.ctx.Done():
				return 0
			}
			if left--; left <= 0 {
				break
			}
			if _, ok := h.procs.Lookup(target); !ok {
				return 0
			}
		}
		h.procs.Kill(target, sig) //nolint:errcheck // gone already: nothing to do, as busybox
		return 0
	})
	cmd, found := h.lookupExternalOK(prog[0])
	if !found {
		errorf(p, "timeout", "can't execute '%s': No such file or directory", prog[0])
		return 127
	}
	p.exec(prog)
	return cmd(p.ctx, p, prog)
}

// cmdUname prints what ESXi's uname prints.
func cmdUname(_ context.Context, p *Proc, args []string) int {
	h := p.host
	fields := []struct {
		flag byte
		val  string
	}{{'s', "VMkernel"}, {'n', h.name}, {'r', h.uname.release}, {'v', h.uname.version},
		{'m', "x86_64"}, {'p', "x86_64"}, {'i', "x86_64"}, {'o', "ESXi"}}
	want := map[byte]bool{}
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			errorf(p, "uname", "extra operand '%s'", a)
			return 1
		}
		for _, c := range []byte(a[1:]) {
			if c == 'a' {
				for _, f := range fields {
					want[f.flag] = true
				}
				continue
			}
			if !strings.ContainsRune("snrvmpio", rune(c)) {
				errorf(p, "uname", "invalid option -- '%c'", c)
				return 1
			}
			want[c] = true
		}
	}
	if len(want) == 0 {
		want['s'] = true
	}
	var out []string
	for _, f := range fields {
		if want[f.flag] {
			out = append(out, f.val)
		}
	}
	if _, err := fmt.Fprintln(p.Stdout(), strings.Join(out, " ")); err != nil {
		return writeFailed()
	}
	return 0
}

// cmdVmware answers `vmware -v` as ESXi does ("VMware ESXi 6.7.0
// build-8169922"). Other options (-l names the update level) are refused
// rather than guessed.
func cmdVmware(_ context.Context, p *Proc, args []string) int {
	if len(args) != 2 || args[1] != "-v" {
		errorf(p, "vmware", "the lab answers only 'vmware -v'")
		return 1
	}
	build := ""
	if i := strings.Index(p.host.uname.version, "build-"); i >= 0 {
		build = strings.Fields(p.host.uname.version[i:])[0]
	}
	if _, err := fmt.Fprintf(p.Stdout(), "VMware ESXi %s %s\n", p.host.uname.release, build); err != nil {
		return writeFailed()
	}
	return 0
}

// cmdDate supports `date`, `date -u` and `date +FORMAT` (ESXi keeps UTC).
func cmdDate(_ context.Context, p *Proc, args []string) int {
	format := "%a %b %e %H:%M:%S %Z %Y"
	for _, a := range args[1:] {
		switch {
		case a == "-u":
		case strings.HasPrefix(a, "+"):
			format = a[1:]
		default:
			errorf(p, "date", "invalid date '%s'", a)
			return 1
		}
	}
	if _, err := fmt.Fprintln(p.Stdout(), strftime(format, p.host.now().UTC())); err != nil {
		return writeFailed()
	}
	return 0
}

func strftime(f string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'Y':
			fmt.Fprintf(&b, "%d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'N':
			fmt.Fprintf(&b, "%09d", t.Nanosecond())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'A':
			b.WriteString(t.Format("Monday"))
		case 'b', 'h':
			b.WriteString(t.Format("Jan"))
		case 'B':
			b.WriteString(t.Format("January"))
		case 'Z':
			b.WriteString("UTC")
		case 'z':
			b.WriteString("+0000")
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

func cmdHostname(_ context.Context, p *Proc, args []string) int {
	name := p.host.name
	for _, a := range args[1:] {
		switch a {
		case "-s":
			name, _, _ = strings.Cut(name, ".")
		case "-f":
		default:
			errorf(p, "hostname", "setting the host name is not emulated by the lab")
			return 1
		}
	}
	if _, err := fmt.Fprintln(p.Stdout(), name); err != nil {
		return writeFailed()
	}
	return 0
}

// cmdGrep is a basic busybox grep: -v -q -i -F -E -c -n -s -e PATTERN.
func cmdGrep(_ context.Context, p *Proc, args []string) int {
	var invert, quiet, icase, fixed, ext, count, number, silent bool
	after := 0 // -A N: lines of context after each match
	var pats []string
	var files []string
	rest := args[1:]
	for len(rest) > 0 {
		a := rest[0]
		rest = rest[1:]
		if a == "--" {
			files = append(files, rest...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			files = append(files, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'v':
				invert = true
			case 'q':
				quiet = true
			case 'i':
				icase = true
			case 'F':
				fixed = true
			case 'E':
				ext = true
			case 'c':
				count = true
			case 'n':
				number = true
			case 's':
				silent = true
			case 'e', 'A':
				v := a[j+1:]
				if v == "" {
					if len(rest) == 0 {
						errorf(p, "grep", "option requires an argument -- '%c'", a[j])
						return 2
					}
					v, rest = rest[0], rest[1:]
				}
				if a[j] == 'A' {
					n, err := strconv.Atoi(v)
					if err != nil || n < 0 {
						errorf(p, "grep", "invalid number '%s'", v)
						return 2
					}
					after = n
				} else {
					pats = append(pats, v)
				}
				j = len(a)
			default:
				errorf(p, "grep", "invalid option -- '%c'", a[j])
				return 2
			}
		}
	}
	if len(pats) == 0 {
		if len(files) == 0 {
			fmt.Fprint(p.Stderr(), "BusyBox v1.29.3 multi-call binary.\n\nUsage: grep [-HhnlLoqvsriwFE] [-m N] [-A/B/C N] PATTERN/-e PATTERN.../-f FILE [FILE]...\n")
			return 2
		}
		pats, files = files[:1], files[1:]
	}
	var res []*regexp.Regexp
	for _, pt := range pats {
		expr := pt
		switch {
		case fixed:
			expr = regexp.QuoteMeta(pt)
		case !ext:
			expr = breToRE2(pt)
		}
		if icase {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			errorf(p, "grep", "bad regex '%s': %v", pt, err)
			return 2
		}
		res = append(res, re)
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	matched, st := false, 1
	w := bufio.NewWriter(p.Stdout())
	for _, f := range files {
		r, err := openInput(p, f)
		if err != nil {
			if !silent {
				errorf(p, "grep", "%s: %s", f, errText(err))
			}
			st = 2
			continue
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		n, lineNo := 0, 0
		ctxLeft, lastOut := 0, 0 // -A: context lines still to print; the last line printed
		for sc.Scan() {
			lineNo++
			line := sc.Text()
			hit := false
			for _, re := range res {
				if re.MatchString(line) {
					hit = true
					break
				}
			}
			if hit == invert {
				if ctxLeft > 0 && !quiet && !count {
					ctxLeft--
					lastOut = lineNo
					if len(files) > 1 {
						w.WriteString(f + "-")
					}
					if number {
						fmt.Fprintf(w, "%d-", lineNo)
					}
					w.WriteString(line + "\n")
				}
				continue
			}
			if after > 0 && lastOut > 0 && lineNo > lastOut+1 && !quiet && !count {
				w.WriteString("--\n")
			}
			ctxLeft, lastOut = after, lineNo
			matched = true
			n++
			if quiet {
				return 0
			}
			if count {
				continue
			}
			if len(files) > 1 {
				w.WriteString(f + ":")
			}
			if number {
				fmt.Fprintf(w, "%d:", lineNo)
			}
			w.WriteString(line + "\n")
		}
		if count {
			if len(files) > 1 {
				w.WriteString(f + ":")
			}
			fmt.Fprintf(w, "%d\n", n)
		}
		if err := w.Flush(); err != nil {
			return writeFailed()
		}
	}
	if matched && st != 2 {
		return 0
	}
	if matched {
		return 0
	}
	return st
}

// breToRE2 turns a POSIX basic regular expression into Go syntax: \( \) \{
// \} \| \+ \? are the operators, the bare characters are literals.
func breToRE2(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			i++
			n := p[i]
			if strings.IndexByte("(){}|+?", n) >= 0 {
				b.WriteByte(n)
			} else {
				b.WriteByte('\\')
				b.WriteByte(n)
			}
			continue
		}
		if strings.IndexByte("(){}|+?", c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
