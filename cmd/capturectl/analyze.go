package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/ingest"
	"github.com/capturectl/capturectl/report"
)

func runAnalyze(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "analyze", "analyze [flags] FILE...|-\n\n"+
		"Correlates saved captures offline: pcapng (interfaces named like esx02/vmnic2/rx or\n"+
		"esx02/50331657/VnicRx, as capturectl writes them), pcap (name its point with --point),\n"+
		"pktcap-uw console text as operators paste it (the banner names the uplink or port;\n"+
		"--trace output too), or tcpdump-uw -xx/-XX text. - reads standard input.")
	var points multiFlag
	fs.Var(&points, "point", "`FILE=NAME`: the capture point of a pcap file, a one-interface pcapng (pktcap-uw -P) or a console transcript without banner, e.g. a.pcap=esx02/vmnic2/rx; FILE#N=NAME names interface N of a pcapng; FILE - is standard input (repeatable)")
	var dropped multiFlag
	fs.Var(&dropped, "dropped", "`POINT=N`: the point dropped N frames, as pktcap-uw's summary said (\"dropped N packets\"), for captures that do not record it (pcap files, a killed capture's pcapng); *=N for every such point (repeatable)")
	var pf portFlags
	pf.register(fs)
	date := fs.String("date", "", "`YYYY-MM-DD` of console transcripts, which print only the time of day (default: today, UTC)")
	window := fs.Duration("window", 5*time.Millisecond, "sightings of the same bytes within this `duration` are one frame")
	asJSON := fs.Bool("json", false, "write the JSON report to stdout")
	htmlOut := fs.String("html", "", "also write the HTML report to `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("analyze: no capture files given")
	}
	if err := pf.fromTarget(fs); err != nil {
		return err
	}
	port, err := pf.port()
	if err != nil {
		return err
	}
	var day time.Time // ingest's default: today
	if *date != "" {
		if day, err = time.Parse("2006-01-02", *date); err != nil {
			return usagef("--date %q: want YYYY-MM-DD", *date)
		}
	}
	inputs, err := analyzeInputs(fs.Args(), points)
	if err != nil {
		return err
	}
	remove, err := spoolStdin(e, inputs)
	if errors.Is(err, ingest.ErrStdinTwice) {
		return usagef("%v", err)
	} else if err != nil {
		return analyzeError(err, inputs)
	}
	defer remove()
	drops, err := dropFlags(dropped)
	if err != nil {
		return err
	}
	set, err := ingest.Open(inputs, ingest.Options{Day: day, Window: *window, Drops: drops})
	if err != nil {
		return analyzeError(err, inputs)
	}
	res, err := set.Correlate(ctx, correlate.Config{Port: port, Window: *window})
	if err != nil {
		return analyzeError(err, inputs)
	}
	var unknown []string
	for _, p := range res.Points {
		if p.DropsUnknown {
			unknown = append(unknown, p.Name)
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintf(e.stderr, "capturectl: analyze: the captures of %s record no drop count, so frames they may have missed make verdicts inconclusive; "+
			"if pktcap-uw's summary said \"dropped 0 packets\", pass --dropped POINT=0 (or --dropped '*=0')\n", strings.Join(unknown, ", "))
	}
	meta := report.Meta{Title: "capturectl analyze " + strings.Join(fs.Args(), " ")}
	if *htmlOut != "" {
		if err := writeAtomic(*htmlOut, func(w io.Writer) error { return report.HTML(w, res, meta) }); err != nil {
			return err
		}
		meta.Files = append(meta.Files, *htmlOut)
	}
	if *asJSON {
		err = report.JSON(e.stdout, res, meta)
	} else {
		err = report.Text(e.stdout, res, meta)
	}
	if err != nil {
		return err
	}
	if res.Filtered() {
		return errFiltered
	}
	return nil
}

// analyzeInputs makes the files inputs, named by --point FILE=NAME (the
// point of a file that holds one) and FILE#N=NAME (interface N of a
// pcapng).
func analyzeInputs(files, points []string) ([]ingest.Input, error) {
	named := map[string]string{}
	ifaces := map[string]map[int]string{}
	for _, p := range points {
		f, name, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, usagef("--point %q: want FILE=NAME", p)
		}
		if slices.Contains(files, f) {
			named[f] = name
			continue
		}
		k := strings.LastIndex(f, "#")
		n, err := strconv.Atoi(f[k+1:])
		if k < 0 || err != nil || !slices.Contains(files, f[:k]) {
			return nil, usagef("--point names %q, which is not among the files", f)
		}
		if ifaces[f[:k]] == nil {
			ifaces[f[:k]] = map[int]string{}
		}
		ifaces[f[:k]][n] = name
	}
	inputs := make([]ingest.Input, len(files))
	for i, f := range files {
		inputs[i] = ingest.Input{Name: f, Point: named[f], Interfaces: ifaces[f]}
	}
	return inputs, nil
}

// spoolStdin reads the input - from standard input (ingest.SpoolStdin).
func spoolStdin(e *env, inputs []ingest.Input) (remove func() error, err error) {
	if f, ok := e.stdin.(*os.File); ok && slices.ContainsFunc(inputs, func(in ingest.Input) bool { return in.Name == ingest.StdinName }) {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(e.stderr, "capturectl: analyze: reading the capture from standard input (paste it, then Ctrl-D)")
		}
	}
	return ingest.SpoolStdin(inputs, e.stdin)
}

// analyzeError says what failed in the command's terms: a point to name
// is named with --point.
func analyzeError(err error, inputs []ingest.Input) error {
	var ne *ingest.NameError
	if errors.As(err, &ne) {
		return pointUsage(ne, inputs)
	}
	var ie *ingest.InputError
	var pe *fs.PathError
	switch {
	case errors.Is(err, ingest.ErrDrops):
		return usagef("--dropped: %v", strings.TrimPrefix(err.Error(), "ingest: "))
	case !errors.As(err, &ie):
		return err
	case errors.Is(ie.Err, ingest.ErrNotCapture), errors.Is(ie.Err, ingest.ErrNoBytes), errors.Is(ie.Err, ingest.ErrNoLinkHeader), errors.Is(ie.Err, ingest.ErrSpoolFull):
		name := ie.Input
		if name == ingest.StdinName {
			name = "standard input"
		}
		return usagef("%s: %w", name, ie.Err)
	case errors.As(ie.Err, &pe) && pe.Path == ie.Input:
		return fmt.Errorf("analyze: %w", ie.Err) // "open FILE: ..."
	}
	return fmt.Errorf("analyze: %s: %w", ie.Input, ie.Err)
}

func pointUsage(ne *ingest.NameError, inputs []ingest.Input) error {
	file, key := ne.Input, ne.Input
	if k := slices.IndexFunc(inputs, func(in ingest.Input) bool { return in.Name == file }); k >= 0 && ne.Iface >= 0 {
		if _, ok := inputs[k].Interfaces[ne.Iface]; ok {
			key = fmt.Sprintf("%s#%d", file, ne.Iface)
		}
	}
	const how = "HOST/vmnicN/rx (or HOST/PORTID/PortOutput, ...)"
	switch ne.Problem {
	case ingest.Unnamed:
		return usagef("%s is a pcap file: name its capture point with --point %s="+how, file, file)
	case ingest.BadName:
		return usagef("--point %s=%s: %w", key, ne.Name, ne.Err)
	case ingest.TooManyInterfaces:
		return usagef("--point %s=%s: the file has %d interfaces: name each with --point %s#N=NAME (N from 0, as Wireshark's frame.interface_id)", file, ne.Name, ne.Count, file)
	case ingest.TooManySessions:
		return usagef("--point %s=%s: the transcript holds %d pktcap-uw sessions; --point names the point of a transcript of one session at one point (the banners name the others)", file, ne.Name, ne.Count)
	case ingest.AmbiguousBanner:
		return usagef("%s, run %d: a banner follows its frames but comes before another session's, so it could name either; it is taken to name the later run: "+
			"paste each session with its banner before its frames (or with its summary line, which ends a session), or split the transcript and name each file with --point FILE=HOST/vmnicN/rx", file, ne.Run)
	case ingest.NotAPoint:
		switch {
		case ne.Run > 0:
			return usagef("%s, run %d: %w; the transcript lacks the banner that names the point (\"The name of the uplink is vmnicN\", \"The switch port id is 0x...\"): add it, or name the point of a one-session transcript with --point %s=HOST/vmnicN/rx", file, ne.Run, ne.Err, file)
		case ne.Count == 1 && ne.Merged():
			return usagef("%s: its one interface is named %q, and %s wrote the file: mergecap merged the files into one interface, so their points cannot be told apart; "+
				"merge them again with mergecap -I none (one interface per file) and name each with --point %s#N="+how+", or give the per-point files with --point FILE="+how, file, ne.Name, ne.Application, file)
		case ne.Count == 1:
			return usagef("%s: its interface is named %q, not after a capture point: name it with --point %s="+how, file, ne.Name, file)
		}
		return usagef("%s: interface %d is named %q, not after a capture point: name it with --point %s#%d="+how, file, ne.Iface, ne.Name, file, ne.Iface)
	case ingest.NoSuchInterface:
		if ne.Count == 0 {
			return usagef("--point %s#%d=%s: %s is not a pcapng file", file, ne.Iface, ne.Name, file)
		}
		if ne.Count > 1 && !ne.Merged() {
			return usagef("--point %s#%d=%s: the file has %d interfaces (#0 to #%d)", file, ne.Iface, ne.Name, ne.Count, ne.Count-1)
		}
		n := fmt.Sprintf("%d interfaces", ne.Count)
		if ne.Count == 1 {
			n = "1 interface"
		}
		who := "if mergecap made it, it"
		if ne.Merged() {
			who = "mergecap (" + ne.Application + " wrote it)"
		}
		return usagef("--point %s#%d=%s: --point names %d interfaces of %s, but it has %s; %s merged the files into one interface (its default, -I all), "+
			"so their points cannot be told apart: merge them again with mergecap -I none, which keeps one interface per file, or give the per-point files with --point FILE=NAME",
			file, ne.Iface, ne.Name, ne.Named, file, n, who)
	}
	return &usageError{ne}
}

// dropFlags reads --dropped POINT=N flags.
func dropFlags(flags []string) (map[string]uint64, error) {
	m := map[string]uint64{}
	for _, f := range flags {
		name, v, ok := strings.Cut(f, "=")
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if !ok || name == "" || err != nil {
			return nil, usagef("--dropped %q: want POINT=N (e.g. esx02/vmnic2/rx=0, or *=0), N the drops pktcap-uw reported", f)
		}
		if _, dup := m[name]; dup {
			return nil, usagef("--dropped: %s given twice", name)
		}
		m[name] = n
	}
	return m, nil
}
