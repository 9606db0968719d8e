package pktcap

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Value is an option value that remembers whether it was given, so that a
// zero value ("-s 0" = whole packet, "--vlan 0") is not confused with unset.
type Value[T comparable] struct {
	V   T
	Set bool
}

// Some returns a Value that is set to v.
func Some[T comparable](v T) Value[T] { return Value[T]{V: v, Set: true} }

// Get returns the value and whether it was set.
func (v Value[T]) Get() (T, bool) { return v.V, v.Set }

// Dir is the --dir value: the direction pktcap-uw uses to pick a capture
// point when --capture is not given.
type Dir int

// Directions. 6.x builds know 0 and 1 only; newer builds also accept 2 and
// the names input, output and inputAndOutput.
const (
	DirRx   Dir = 0 // "0" or "input"; the default
	DirTx   Dir = 1 // "1" or "output"
	DirBoth Dir = 2 // "2" or "inputAndOutput" (newer builds)
)

// ParseDir parses a --dir value.
func ParseDir(s string) (Dir, error) {
	switch s {
	case "0", "input":
		return DirRx, nil
	case "1", "output":
		return DirTx, nil
	case "2", "inputAndOutput":
		return DirBoth, nil
	}
	return 0, fmt.Errorf("want 0|input|1|output|2|inputAndOutput")
}

// String returns the numeric form, which every build accepts for 0 and 1.
func (d Dir) String() string { return strconv.Itoa(int(d)) }

// StageOption is the --stage value (before or after the point).
type StageOption int

// Stage option values.
const (
	StagePre  StageOption = 0 // "0" or "pre"
	StagePost StageOption = 1 // "1" or "post"
)

// ParseStageOption parses a --stage value.
func ParseStageOption(s string) (StageOption, error) {
	switch s {
	case "0", "pre":
		return StagePre, nil
	case "1", "post":
		return StagePost, nil
	}
	return 0, fmt.Errorf("want 0|pre|1|post")
}

// String returns the numeric form.
func (s StageOption) String() string { return strconv.Itoa(int(s)) }

// Options is a pktcap-uw command line. Strings and booleans are unset when
// empty/false; numbers use Value so that zero can be given explicitly.
type Options struct {
	Uplink     string        // --uplink vmnicN
	SwitchPort Value[uint32] // --switchport, decimal port ID (printed back in hex by the tool)
	Vmk        string        // --vmk vmkN
	DVFilter   string        // --dvfilter <filter name>
	LifID      string        // --lifID <lif id for vdr>

	Capture    []Point            // --capture P[,P...] (comma lists on newer builds only)
	Dir        Value[Dir]         // --dir
	Stage      Value[StageOption] // --stage
	KernelSide bool               // -K, --kernelside
	Function   string             // -f [module.]function[:offset]

	Count   Value[int] // -c, --count
	Snaplen Value[int] // -s, --snaplen (--snapLen); 0 = whole packet, else >= 24
	Outfile string     // -o, --outfile; "-" = stdout
	NG      bool       // -P, --ng (pcapng; only with -o)
	Console bool       // --console (the default without -o)
	Port    Value[int] // -p, --port: vsocket server port
	Trace   bool       // --trace

	AvailPoints   bool // -A, --availpoints
	ListFunctions bool // -F
	Help          bool // -h

	Filter Filter // flow filter options
}

// optKind says how an option takes its value.
type optKind int

const (
	optFlag optKind = iota
	optValue
)

type optSpec struct {
	names []string // first is canonical; one-letter names are short options
	kind  optKind
	set   func(o *Options, v string) error
}

var (
	reUplink   = regexp.MustCompile(`^(vmnic|vusb)[0-9]+$`)
	reVmk      = regexp.MustCompile(`^vmk[0-9]+$`)
	reName     = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	reFunction = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?(:(0x[0-9A-Fa-f]+|[0-9]+))?$`)
	reOutfile  = regexp.MustCompile(`^[A-Za-z0-9_./+:-]+$`)
	// reSafeArg is what Command leaves unquoted.
	reSafeArg = regexp.MustCompile(`^[A-Za-z0-9_./+:,=-]+$`)
)

func parseUint(s string, bits int) (uint64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, errors.New("want a decimal number")
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("want a decimal number of at most %d bits", bits)
	}
	return n, nil
}

func parseHex(s string, bits int) (uint64, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if h == "" || h[0] == '+' || h[0] == '-' {
		return 0, errors.New("want 0x and hex digits")
	}
	n, err := strconv.ParseUint(h, 16, bits)
	if err != nil {
		return 0, fmt.Errorf("want 0x and at most %d hex digits", bits/4)
	}
	return n, nil
}

func setInt(dst *Value[int], max int) func(string) error {
	return func(v string) error {
		n, err := parseUint(v, 31)
		if err != nil {
			return err
		}
		if int(n) > max {
			return fmt.Errorf("want at most %d", max)
		}
		*dst = Some(int(n))
		return nil
	}
}

func setUint16(dst *Value[uint16]) func(string) error {
	return func(v string) error {
		n, err := parseUint(v, 16)
		if err != nil {
			return err
		}
		*dst = Some(uint16(n))
		return nil
	}
}

func setMAC(dst *Value[MAC]) func(string) error {
	return func(v string) error {
		m, err := ParseMAC(v)
		if err != nil {
			return err
		}
		*dst = Some(m)
		return nil
	}
}

func setPrefix(dst *Value[netip.Prefix]) func(string) error {
	return func(v string) error {
		p, err := parseIPv4Prefix(v)
		if err != nil {
			return err
		}
		*dst = Some(p)
		return nil
	}
}

func setString(dst *string) func(string) error {
	return func(v string) error { *dst = v; return nil }
}

// specs is the option table. Values are checked for syntax here and for
// the character patterns in Validate.
func specs(o *Options) []optSpec {
	f := &o.Filter
	flag := func(dst *bool) func(*Options, string) error {
		return func(*Options, string) error { *dst = true; return nil }
	}
	val := func(fn func(string) error) func(*Options, string) error {
		return func(_ *Options, v string) error { return fn(v) }
	}
	return []optSpec{
		{[]string{"uplink"}, optValue, val(setString(&o.Uplink))},
		{[]string{"switchport"}, optValue, val(func(v string) error {
			n, err := parseUint(v, 32)
			if err != nil {
				return err
			}
			o.SwitchPort = Some(uint32(n))
			return nil
		})},
		{[]string{"vmk"}, optValue, val(setString(&o.Vmk))},
		{[]string{"dvfilter", "dvFilter"}, optValue, val(setString(&o.DVFilter))},
		{[]string{"lifID"}, optValue, val(setString(&o.LifID))},
		{[]string{"capture"}, optValue, val(func(v string) error {
			var pts []Point
			for _, s := range strings.Split(v, ",") {
				p, err := ParsePoint(s)
				if err != nil {
					return err
				}
				pts = append(pts, p)
			}
			o.Capture = pts
			return nil
		})},
		{[]string{"dir"}, optValue, val(func(v string) error {
			d, err := ParseDir(v)
			if err != nil {
				return err
			}
			o.Dir = Some(d)
			return nil
		})},
		{[]string{"stage"}, optValue, val(func(v string) error {
			s, err := ParseStageOption(v)
			if err != nil {
				return err
			}
			o.Stage = Some(s)
			return nil
		})},
		{[]string{"K", "kernelside"}, optFlag, flag(&o.KernelSide)},
		{[]string{"f"}, optValue, val(setString(&o.Function))},
		{[]string{"c", "count"}, optValue, val(setInt(&o.Count, 1<<31-1))},
		{[]string{"s", "snaplen", "snapLen"}, optValue, val(setInt(&o.Snaplen, maxSnaplen))},
		{[]string{"o", "outfile"}, optValue, val(setString(&o.Outfile))},
		{[]string{"P", "ng"}, optFlag, flag(&o.NG)},
		{[]string{"console"}, optFlag, flag(&o.Console)},
		{[]string{"p", "port"}, optValue, val(setInt(&o.Port, 65535))},
		{[]string{"trace"}, optFlag, flag(&o.Trace)},
		{[]string{"A", "availpoints"}, optFlag, flag(&o.AvailPoints)},
		{[]string{"F"}, optFlag, flag(&o.ListFunctions)},
		{[]string{"h"}, optFlag, flag(&o.Help)},
		{[]string{"srcmac"}, optValue, val(setMAC(&f.SrcMAC))},
		{[]string{"dstmac"}, optValue, val(setMAC(&f.DstMAC))},
		{[]string{"mac"}, optValue, val(setMAC(&f.MAC))},
		{[]string{"ethtype"}, optValue, val(func(v string) error {
			n, err := parseHex(v, 16)
			if err != nil {
				return err
			}
			f.EthType = Some(uint16(n))
			return nil
		})},
		{[]string{"vlan"}, optValue, val(func(v string) error {
			n, err := parseUint(v, 16)
			if err != nil {
				return err
			}
			if n > 4095 {
				return errors.New("want 0..4095")
			}
			f.VLAN = Some(uint16(n))
			return nil
		})},
		{[]string{"srcip"}, optValue, val(setPrefix(&f.SrcIP))},
		{[]string{"dstip"}, optValue, val(setPrefix(&f.DstIP))},
		{[]string{"ip"}, optValue, val(func(v string) error {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() {
				return errors.New("want an IPv4 address x.x.x.x")
			}
			f.IP = Some(a)
			return nil
		})},
		{[]string{"proto"}, optValue, val(func(v string) error {
			n, err := parseHex(v, 8)
			if err != nil {
				return err
			}
			f.Proto = Some(uint8(n))
			return nil
		})},
		{[]string{"srcport"}, optValue, val(setUint16(&f.SrcPort))},
		{[]string{"dstport"}, optValue, val(setUint16(&f.DstPort))},
		{[]string{"tcpport"}, optValue, val(setUint16(&f.TCPPort))},
		{[]string{"vxlan"}, optValue, val(func(v string) error {
			n, err := parseUint(v, 32)
			if err != nil {
				return err
			}
			if n > 1<<24-1 {
				return errors.New("want a 24-bit VXLAN id (0..16777215)")
			}
			f.VXLAN = Some(uint32(n))
			return nil
		})},
	}
}

// maxSnaplen bounds -s. The real tool's maximum is not documented; 262144
// is libpcap's.
const maxSnaplen = 262144

func lookup(table []optSpec, name string, short bool) *optSpec {
	for i := range table {
		for _, n := range table[i].names {
			if n == name && (len(n) == 1) == short {
				return &table[i]
			}
		}
	}
	return nil
}

// ParseArgs parses pktcap-uw arguments (without the program name) and
// validates them (see Validate). Accepted forms: --opt value, --opt=value,
// -o value, -o=value, -ovalue for one-letter options, bundled one-letter
// flags (-AP, as the usage line's [-AFhP] suggests), and -opt value with a
// single dash for long names (the real tool accepted "-dir 0": it appears to
// use getopt_long_only). A repeated option replaces the earlier value, as
// with getopt. Errors name the option and the bad value.
func ParseArgs(args []string) (*Options, error) {
	o := &Options{}
	table := specs(o)
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if len(arg) < 2 || arg[0] != '-' || arg == "--" {
			return nil, fmt.Errorf("pktcap: unexpected argument %q", arg)
		}
		var name, value string
		hasValue := false
		var spec *optSpec
		display := arg
		if strings.HasPrefix(arg, "--") {
			name = arg[2:]
			if k := strings.IndexByte(name, '='); k >= 0 {
				name, value, hasValue = name[:k], name[k+1:], true
			}
			spec = lookup(table, name, false)
			display = "--" + name
		} else {
			body := arg[1:]
			n := body
			if k := strings.IndexByte(body, '='); k >= 0 {
				n = body[:k]
			}
			if len(n) > 1 {
				spec = lookup(table, n, false) // -dir 0
				if spec != nil {
					name = n
					if len(n) < len(body) {
						value, hasValue = body[len(n)+1:], true
					}
				}
			}
			if spec == nil {
				name = body[:1]
				spec = lookup(table, name, true)
				rest := body[1:]
				if spec != nil && spec.kind == optFlag && rest != "" && rest[0] != '=' {
					// Bundled flags such as -AP (the usage line shows [-AFhP]).
					for j := 0; j < len(rest); j++ {
						b := lookup(table, rest[j:j+1], true)
						if b == nil || b.kind != optFlag {
							return nil, fmt.Errorf("pktcap: unknown option %q", arg)
						}
						_ = b.set(o, "")
					}
					rest = ""
				}
				if rest != "" {
					value, hasValue = strings.TrimPrefix(rest, "="), true
				}
			}
			display = "-" + name
		}
		if spec == nil {
			return nil, fmt.Errorf("pktcap: unknown option %q", arg)
		}
		switch spec.kind {
		case optFlag:
			if hasValue {
				return nil, fmt.Errorf("pktcap: option %s takes no value (got %q)", display, value)
			}
			_ = spec.set(o, "")
		case optValue:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("pktcap: option %s needs a value", display)
				}
				i++
				value = args[i]
			}
			if value == "" {
				return nil, fmt.Errorf("pktcap: option %s: empty value", display)
			}
			if err := spec.set(o, value); err != nil {
				return nil, fmt.Errorf("pktcap: option %s: bad value %q: %w", display, value, err)
			}
		}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// Args returns the argument list (without the program name) in a canonical
// order: --trace (first, as in its usage line), port selection, --dir,
// --stage, -K, -f, -c, -s, flow filters, --capture, -o, -P, --console, -p,
// -A, -F, -h. For the article's command lines this is the order the author
// typed. ParseArgs(o.Args())
// gives back o for every o that ParseArgs returned.
func (o *Options) Args() []string {
	var a []string
	add := func(s ...string) { a = append(a, s...) }
	if o.Trace {
		add("--trace")
	}
	if o.Uplink != "" {
		add("--uplink", o.Uplink)
	}
	if v, ok := o.SwitchPort.Get(); ok {
		add("--switchport", strconv.FormatUint(uint64(v), 10))
	}
	if o.Vmk != "" {
		add("--vmk", o.Vmk)
	}
	if o.DVFilter != "" {
		add("--dvfilter", o.DVFilter)
	}
	if o.LifID != "" {
		add("--lifID", o.LifID)
	}
	if v, ok := o.Dir.Get(); ok {
		add("--dir", v.String())
	}
	if v, ok := o.Stage.Get(); ok {
		add("--stage", v.String())
	}
	if o.KernelSide {
		add("-K")
	}
	if o.Function != "" {
		add("-f", o.Function)
	}
	if v, ok := o.Count.Get(); ok {
		add("-c", strconv.Itoa(v))
	}
	if v, ok := o.Snaplen.Get(); ok {
		add("-s", strconv.Itoa(v))
	}
	a = o.Filter.appendArgs(a)
	if len(o.Capture) > 0 {
		s := make([]string, len(o.Capture))
		for i, p := range o.Capture {
			s[i] = string(p)
		}
		add("--capture", strings.Join(s, ","))
	}
	if o.Outfile != "" {
		add("-o", o.Outfile)
	}
	if o.NG {
		add("-P")
	}
	if o.Console {
		add("--console")
	}
	if v, ok := o.Port.Get(); ok {
		add("-p", strconv.Itoa(v))
	}
	if o.AvailPoints {
		add("-A")
	}
	if o.ListFunctions {
		add("-F")
	}
	if o.Help {
		add("-h")
	}
	return a
}

// Validate checks every value against a strict pattern, so that nothing a
// user typed can become shell syntax, and applies the real tool's option
// rules. It reports all problems, joined.
//
// Patterns: --uplink ^(vmnic|vusb)[0-9]+$ (vusb: the USB NIC driver's
// uplinks), --vmk ^vmk[0-9]+$, --dvfilter and --lifID ^[A-Za-z0-9_.:-]+$,
// -f [module.]function[:offset], -o "-" or ^[A-Za-z0-9_./+:-]+$ not starting
// with "-" (so datastore paths with spaces cannot be used; copy afterwards).
//
// Rules: at most one of --uplink/--switchport/--vmk/--dvfilter (the usage
// text lists them as alternatives); -P only with -o and --console not with -o
// (help text); -s is 0 (whole packet) or at least 24 (help text); -c at least
// 1 (assumption: the meaning of 0 is not documented); -p 1..65535; --capture
// without duplicates; --trace without port selection, --capture, --dir or
// --stage (its usage line takes none of them); -K only with --uplink (help:
// "for --uplink").
func (o *Options) Validate() error {
	var errs []error
	bad := func(opt, v, want string) {
		errs = append(errs, fmt.Errorf("pktcap: option %s: bad value %q: want %s", opt, v, want))
	}
	if o.Uplink != "" && !reUplink.MatchString(o.Uplink) {
		bad("--uplink", o.Uplink, "vmnicN")
	}
	if o.Vmk != "" && !reVmk.MatchString(o.Vmk) {
		bad("--vmk", o.Vmk, "vmkN")
	}
	if o.DVFilter != "" && !reName.MatchString(o.DVFilter) {
		bad("--dvfilter", o.DVFilter, "letters, digits and _.:-")
	}
	if o.LifID != "" && !reName.MatchString(o.LifID) {
		bad("--lifID", o.LifID, "letters, digits and _.:-")
	}
	if o.Function != "" && !reFunction.MatchString(o.Function) {
		bad("-f", o.Function, "[module.]function[:offset]")
	}
	if o.Outfile != "" && o.Outfile != "-" && (!reOutfile.MatchString(o.Outfile) || o.Outfile[0] == '-') {
		bad("-o", o.Outfile, `"-" or a path of letters, digits and _./+:- not starting with "-"`)
	}
	var sel []string
	if o.Uplink != "" {
		sel = append(sel, "--uplink")
	}
	if o.SwitchPort.Set {
		sel = append(sel, "--switchport")
	}
	if o.Vmk != "" {
		sel = append(sel, "--vmk")
	}
	if o.DVFilter != "" {
		sel = append(sel, "--dvfilter")
	}
	if len(sel) > 1 {
		errs = append(errs, fmt.Errorf("pktcap: options %s exclude each other", strings.Join(sel, " and ")))
	}
	for i, p := range o.Capture {
		if _, err := ParsePoint(string(p)); err != nil {
			errs = append(errs, fmt.Errorf("pktcap: option --capture: %w", err))
		} else if slices.Contains(o.Capture[:i], p) {
			errs = append(errs, fmt.Errorf("pktcap: option --capture: point %s given twice", p))
		}
	}
	if v, ok := o.Dir.Get(); ok && (v < DirRx || v > DirBoth) {
		bad("--dir", v.String(), "0, 1 or 2")
	}
	if v, ok := o.Stage.Get(); ok && (v < StagePre || v > StagePost) {
		bad("--stage", v.String(), "0 or 1")
	}
	if v, ok := o.Count.Get(); ok && v < 1 {
		bad("-c", strconv.Itoa(v), "at least 1")
	}
	if v, ok := o.Snaplen.Get(); ok && (v != 0 && v < 24 || v > maxSnaplen) {
		bad("-s", strconv.Itoa(v), fmt.Sprintf("0 (whole packet) or 24..%d", maxSnaplen))
	}
	if v, ok := o.Port.Get(); ok && (v < 1 || v > 65535) {
		bad("-p", strconv.Itoa(v), "1..65535")
	}
	if o.NG && o.Outfile == "" {
		errs = append(errs, errors.New("pktcap: option -P/--ng only works with -o"))
	}
	if o.Console && o.Outfile != "" {
		errs = append(errs, errors.New("pktcap: options --console and -o exclude each other"))
	}
	if o.KernelSide && o.Uplink == "" {
		errs = append(errs, errors.New("pktcap: option -K/--kernelside only works with --uplink"))
	}
	if o.Trace && (len(sel) > 0 || o.LifID != "" || len(o.Capture) > 0 || o.Dir.Set || o.Stage.Set) {
		errs = append(errs, errors.New("pktcap: option --trace takes no port, --capture, --dir or --stage"))
	}
	if err := o.Filter.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Command returns the "pktcap-uw ..." command line for a POSIX shell. Every
// value of a validated Options is plain (letters, digits and _./+:,=-), so
// normally nothing is quoted; any argument outside that set (an Options that
// was never validated) is single-quoted so that it still cannot run as shell
// syntax. Callers should Validate first all the same.
func (o *Options) Command() string {
	var b strings.Builder
	b.WriteString("pktcap-uw")
	for _, a := range o.Args() {
		b.WriteByte(' ')
		b.WriteString(shellQuote(a))
	}
	return b.String()
}

// shellQuote returns s unchanged when it is plain, else single-quoted for a
// POSIX shell.
func shellQuote(s string) string {
	if reSafeArg.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Packets reports where captured packets go with these options: console text
// on stdout without -o, the pcap/pcapng stream on stdout with "-o -", a file
// (StreamNone) otherwise.
func (o *Options) Packets() Stream {
	switch o.Outfile {
	case "":
		return Stdout
	case "-":
		return Stdout
	}
	return StreamNone
}

// Text reports where the banner and status lines go: always stderr. With -o
// this is established (pktcap-uw-notes §2.2: the banner still reaches the
// terminal when stdout is piped into tcpdump-uw, and "2>&1" would corrupt the
// pcap stream). In console mode it is our documented choice on weak evidence
// (a test harness that merged the streams saw the banner after the packets,
// which suggests two differently buffered streams).
func (o *Options) Text() Stream { return Stderr }

// Stream names an output stream of the pktcap-uw process.
type Stream int

// Streams.
const (
	StreamNone Stream = iota // written to a file, not to a stream
	Stdout
	Stderr
)

// String returns "stdout", "stderr" or "none".
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "none"
}
