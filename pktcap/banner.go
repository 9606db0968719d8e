package pktcap

import (
	"fmt"
	"strconv"
	"strings"
)

// SessionInfo holds the run-time values printed in the banner and end
// lines.
type SessionInfo struct {
	ServerPort int       // "No server port specifed, select N as the port", "Listen on port N"
	ClientPort int       // "Vsock connection from port N cid 2"
	CID        int       // local vsock context id; 0 means 2, the value every real host printed
	Threads    [3]uint64 // main, dump and receive thread ids (Style.ThreadLines)
	ID         int       // "Destroying session N"
	// Signalled: the session was stopped by a signal rather than by -c;
	// EndLines then adds "Join with dump thread failed." and "Join with
	// recvthread failed." (seen on a newer build; whether 6.7 prints them
	// is unknown).
	Signalled bool
}

func (s SessionInfo) cid() int {
	if s.CID == 0 {
		return 2
	}
	return s.CID
}

// liner formats banner and status lines for one style and command line.
type liner struct {
	st       Style
	prefix   string // "pktcap: " once the output file line is reached in -o mode
	filemode bool
	lines    []string
}

// add appends text (given without any period the style adds).
func (l *liner) add(text string) {
	if l.st.Periods && !strings.HasSuffix(text, ".") {
		text += "."
	}
	l.lines = append(l.lines, l.prefix+text)
}

// addStatus appends a line that 6.7 ends with a space.
func (l *liner) addStatus(text string) {
	if l.st.StatusTrailingSpace && !l.st.Periods {
		l.lines = append(l.lines, l.prefix+text+" ")
		return
	}
	l.add(text)
}

func (l *liner) startPrefix() {
	if l.filemode {
		l.prefix = l.st.FilePrefix
	}
}

func newLiner(o *Options, st Style) *liner {
	return &liner{st: st, filemode: o.Outfile != ""}
}

// BannerLines returns the lines pktcap-uw prints (to stderr, see
// Options.Text) before the first packet, in the observed order
// (pktcap-uw-notes §2.1):
//
//	The name of the uplink is vmnic2        | The switch port id is 0x03000009 | The name of the vmk is vmk1
//	The dir is Output                       (--dir 1; "The dir is Rx" for --dir 0)
//	The Stage is Pre                        (--stage)
//	To capture 3 packets                    (-c)
//	The session filter IP protocol is 0x01  (one line per filter)
//	The session capture point is PortOutput (--capture)
//	pktcap: The output file is -.           (-o; the "pktcap: " prefix starts here, Style80)
//	No server port specifed, select 65440 as the port   (sic; not with -p)
//	Output the packet info to console.      (without -o)
//	Local CID 2
//	Listen on port 65440
//	Main thread: N. / Dump Thread: N. / Recv Thread: N.  (Style.ThreadLines)
//	Accept...Vsock connection from port 1062 cid 2       (two lines with Style.SplitAccept)
//
// Seen verbatim: the uplink, switch port and vmk lines, both dir lines, "To
// capture", the "IP protocol" and "source IP address" filter lines, the
// capture point line, the output file line and everything after it.
// Assumptions: no dir line for --dir 2 (an NSX-T transcript with --dir 2 has
// none), the dvfilter/lifID lines, the wording of the other filter lines, a
// comma list for several capture points, no line for -s, -p and --trace.
func BannerLines(o *Options, st Style, s SessionInfo) []string {
	l := newLiner(o, st)
	switch {
	case o.Uplink != "":
		l.add("The name of the uplink is " + o.Uplink)
	case o.SwitchPort.Set:
		l.add(fmt.Sprintf("The switch port id is 0x%08x", o.SwitchPort.V))
	case o.Vmk != "":
		l.add("The name of the vmk is " + o.Vmk)
	case o.DVFilter != "":
		l.add("The name of the dvfilter is " + o.DVFilter)
	}
	if o.LifID != "" {
		l.add("The lif id is " + o.LifID)
	}
	if d, ok := o.Dir.Get(); ok {
		switch d {
		case DirRx:
			l.add("The dir is Rx")
		case DirTx:
			l.add("The dir is Output")
		}
	}
	if v, ok := o.Stage.Get(); ok {
		if v == StagePost {
			l.add("The Stage is Post")
		} else {
			l.add("The Stage is Pre")
		}
	}
	if v, ok := o.Count.Get(); ok {
		l.add(fmt.Sprintf("To capture %d packets", v))
	}
	for _, fl := range o.Filter.bannerItems() {
		l.add("The session filter " + fl)
	}
	if len(o.Capture) > 0 {
		names := make([]string, len(o.Capture))
		for i, p := range o.Capture {
			names[i] = string(p)
		}
		l.add("The session capture point is " + strings.Join(names, ","))
	}
	if o.Outfile != "" {
		l.startPrefix()
		l.add("The output file is " + o.Outfile)
	}
	if !o.Port.Set {
		l.add(fmt.Sprintf("No server port specifed, select %d as the port", s.ServerPort))
	}
	if o.Outfile == "" {
		l.add("Output the packet info to console.")
	}
	l.add("Local CID " + strconv.Itoa(s.cid()))
	port := s.ServerPort
	if o.Port.Set {
		port = o.Port.V
	}
	l.add("Listen on port " + strconv.Itoa(port))
	if st.ThreadLines {
		l.add("Main thread: " + strconv.FormatUint(s.Threads[0], 10))
		l.add("Dump Thread: " + strconv.FormatUint(s.Threads[1], 10))
		l.add("Recv Thread: " + strconv.FormatUint(s.Threads[2], 10))
	}
	vsock := fmt.Sprintf("Vsock connection from port %d cid %d", s.ClientPort, s.cid())
	if st.SplitAccept {
		l.add("Accept...")
		l.add(vsock)
	} else {
		l.add("Accept..." + vsock)
	}
	return l.lines
}

// bannerItems returns "<what> is <value>" for each set filter, in the help
// text's order. Seen verbatim: "IP protocol is 0x01" and "source IP address
// is 10.83.253.2"; the others follow the same pattern (assumption).
func (f *Filter) bannerItems() []string {
	var s []string
	add := func(what, v string) { s = append(s, what+" is "+v) }
	if v, ok := f.SrcMAC.Get(); ok {
		add("source MAC address", v.String())
	}
	if v, ok := f.DstMAC.Get(); ok {
		add("destination MAC address", v.String())
	}
	if v, ok := f.MAC.Get(); ok {
		add("MAC address", v.String())
	}
	if v, ok := f.EthType.Get(); ok {
		add("Ethernet type", fmt.Sprintf("0x%04x", v))
	}
	if v, ok := f.VLAN.Get(); ok {
		add("VLAN ID", strconv.Itoa(int(v)))
	}
	if v, ok := f.SrcIP.Get(); ok {
		add("source IP address", formatPrefix(v))
	}
	if v, ok := f.DstIP.Get(); ok {
		add("destination IP address", formatPrefix(v))
	}
	if v, ok := f.IP.Get(); ok {
		add("IP address", v.String())
	}
	if v, ok := f.Proto.Get(); ok {
		add("IP protocol", fmt.Sprintf("0x%02x", v))
	}
	if v, ok := f.SrcPort.Get(); ok {
		add("source port", strconv.Itoa(int(v)))
	}
	if v, ok := f.DstPort.Get(); ok {
		add("destination port", strconv.Itoa(int(v)))
	}
	if v, ok := f.TCPPort.Get(); ok {
		add("TCP port", strconv.Itoa(int(v)))
	}
	if v, ok := f.VXLAN.Get(); ok {
		add("VXLAN ID", strconv.FormatUint(uint64(v), 10))
	}
	return s
}

// EndLines returns the lines printed when the session ends, in the observed
// order:
//
//	Receive thread exiting...
//	Dump thread exiting...
//	Destroying session 38
//	                                        (Style.BlankBeforeSummary)
//	Dumped 3 packet to console, dropped 0 packets.
//	Done.
//
// The first line can come before the last packets: the receive thread stops
// when the count is reached while the dump thread is still printing (seen in
// the article: it precedes the third packet). Callers that emulate this
// print EndLines(...)[0] earlier. With SessionInfo.Signalled the two "Join
// with ... failed." lines follow "Dump thread exiting...".
func EndLines(o *Options, st Style, s SessionInfo, sum Summary) []string {
	l := newLiner(o, st)
	l.startPrefix()
	l.addStatus("Receive thread exiting...")
	l.addStatus("Dump thread exiting...")
	if s.Signalled {
		l.add("Join with dump thread failed.")
		l.add("Join with recvthread failed.")
	}
	l.addStatus("Destroying session " + strconv.Itoa(s.ID))
	if st.BlankBeforeSummary {
		l.lines = append(l.lines, "")
	}
	if sum.Dest == "" {
		sum.Dest = SummaryDest(o)
	}
	l.add(sum.text())
	l.add("Done.")
	return l.lines
}

// Summary is the final count line of a session.
type Summary struct {
	Dumped  int
	Dropped int
	// Dest is what follows "to": "console", or "file <name>" (see
	// SummaryDest).
	Dest string
}

// SummaryDest returns the summary destination for o: "console" without -o,
// else "file <name>". The file-mode wording ("Dumped N packet to file -,
// dropped M packets.") was never seen verbatim: it is an assumption modelled
// on the console line.
func SummaryDest(o *Options) string {
	if o.Outfile == "" {
		return "console"
	}
	return "file " + o.Outfile
}

// text returns "Dumped N packet to DEST, dropped M packets." ("packet" is
// singular whatever N is, as every real transcript shows).
func (s Summary) text() string {
	return fmt.Sprintf("Dumped %d packet to %s, dropped %d packets.", s.Dumped, s.Dest, s.Dropped)
}

// SummaryLine returns the summary line for o in style st.
func SummaryLine(o *Options, st Style, sum Summary) string {
	l := newLiner(o, st)
	l.startPrefix()
	if sum.Dest == "" {
		sum.Dest = SummaryDest(o)
	}
	l.add(sum.text())
	return l.lines[0]
}

// ParseSummary parses a summary line leniently: indentation, a "pktcap: "
// prefix, "packet" or "packets", a missing final period, trailing space.
func ParseSummary(line string) (Summary, bool) {
	s := normalizeText(line)
	rest, ok := strings.CutPrefix(s, "Dumped ")
	if !ok {
		return Summary{}, false
	}
	num, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return Summary{}, false
	}
	dumped, ok := atoiDigits(num)
	if !ok {
		return Summary{}, false
	}
	if rest, ok = cutWord(rest, "packet"); !ok {
		return Summary{}, false
	}
	rest, ok = strings.CutPrefix(rest, " to ")
	if !ok {
		return Summary{}, false
	}
	k := strings.LastIndex(rest, ", dropped ")
	if k < 0 {
		return Summary{}, false
	}
	dest := rest[:k]
	num, rest, ok = strings.Cut(rest[k+len(", dropped "):], " ")
	if !ok {
		return Summary{}, false
	}
	dropped, ok := atoiDigits(num)
	if !ok || dest == "" {
		return Summary{}, false
	}
	if rest, ok = cutWord(rest, "packet"); !ok || rest != "" {
		return Summary{}, false
	}
	return Summary{Dumped: dumped, Dropped: dropped, Dest: dest}, true
}

// cutWord removes word or word+"s" from the start of s.
func cutWord(s, word string) (string, bool) {
	rest, ok := strings.CutPrefix(s, word)
	if !ok {
		return s, false
	}
	return strings.TrimPrefix(rest, "s"), true
}
