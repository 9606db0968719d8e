package shell

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ESXi's ps is VMware's own tool, not busybox's: it lists worlds (threads)
// with their cartel (process) ID.
//
// Sources, a public transcript of an ESXi 6.5 host (search index id
// 5131383414, "[root@esx01:~] ps"), verbatim:
//
//	WID    CID    WorldName
//	65537  0      idle1
//	...
//	65770  65770  init
//	67849  67849  sh
//	67872  67872  ps
//
// and, from the same transcript, the usage text printed after
// "ps: invalid option -- 'e'" (psUsage below, verbatim). The WID/CID columns
// there are the widest value plus two spaces (5-digit IDs, 7-character
// columns); a `ps -u` sample with 7-digit IDs in a public Python docstring
// ("7446209  7446202  vmx-vcpu-0:...") also shows two spaces after the
// widest ID, so the width is computed, not fixed. A verbatim `ps -c` header
// was NOT found: the column name "Command" and the 18-character WorldName
// column before it are inferred from a `ps -s` sample (WorldName padded to
// 18 then a space, "19484264 19484254 vmx-vcpu-0:VMNAME  RUN ... /bin/vmx")
// and from `ps -c | grep vmx` samples ("WID CID WorldName /bin/vmx ...").
// Parsers must split on runs of spaces, never on fixed columns. The "PCID"
// header of -P is likewise inferred from the usage text.
const psUsage = `ps
    -C           Display only cartels
    -P           Display PCID
    -T           Display used time
    -c           Display verbose command line
    -g           Display session ID and process group
    -i           Display summary information
    -j           Display GID
    -n           Display nChildren (only with --tree)
    -N           Display nThreads  (only with --tree)
    -s           Display state
    -t           Display type
    -u           Display only userworlds
    -U [N]       Display [only] userspace ID
    -v           Display non truncated values
    -Z           Display the security domain
    -z           Display zombie cartels
    -J or --tree Display userworlds in a tree layout
`

// psOptions are the ps options the lab renders.
type psOptions struct {
	cmdline    bool // -c
	pcid       bool // -P
	userworlds bool // -u
	cartels    bool // -C
}

func cmdPs(_ context.Context, p *Proc, args []string) int {
	var o psOptions
	for _, a := range args[1:] {
		if a == "--tree" {
			a = "-J"
		}
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			fmt.Fprintf(p.Stderr(), "ps: invalid option -- '%s'\n%s", a, psUsage)
			return 1
		}
		for _, c := range a[1:] {
			switch c {
			case 'c':
				o.cmdline = true
			case 'P':
				o.pcid = true
			case 'u':
				o.userworlds = true
			case 'C':
				o.cartels = true
			case 'v': // values are never truncated by the lab
			case 'T', 'g', 'i', 'j', 'n', 'N', 's', 't', 'U', 'Z', 'z', 'J':
				fmt.Fprintf(p.Stderr(), "ps: -%c is not emulated by the lab\n", c)
				return 1
			default:
				fmt.Fprintf(p.Stderr(), "ps: invalid option -- '%c'\n%s", c, psUsage)
				return 1
			}
		}
	}
	if _, err := io.WriteString(p.Stdout(), FormatPS(p.host.procs.List(), o.cmdline, o.pcid, o.userworlds, o.cartels)); err != nil {
		return writeFailed()
	}
	return 0
}

// FormatPS renders worlds as ESXi's ps does: plain (WID CID WorldName),
// with the parent cartel (-P), with the command line (-c), only userworlds
// (-u: CID not 0), only cartels (-C: one line per process).
func FormatPS(list []ProcInfo, cmdline, pcid, userworlds, cartels bool) string {
	rows := list[:0:0]
	for _, pi := range list {
		if userworlds && pi.CID == 0 || cartels && pi.PID != pi.CID {
			continue
		}
		rows = append(rows, pi)
	}
	width := func(head string, val func(ProcInfo) int) int {
		w := len(head)
		for _, r := range rows {
			w = max(w, len(strconv.Itoa(val(r))))
		}
		return w + 2
	}
	wW := width("WID", func(r ProcInfo) int { return r.PID })
	cW := width("CID", func(r ProcInfo) int { return r.CID })
	pW := width("PCID", func(r ProcInfo) int { return r.PPID })
	var b strings.Builder
	line := func(wid, cid, pcidS, name, cmd string) {
		fmt.Fprintf(&b, "%-*s%-*s", wW, wid, cW, cid)
		if pcid {
			fmt.Fprintf(&b, "%-*s", pW, pcidS)
		}
		if cmdline {
			fmt.Fprintf(&b, "%-18s %s", name, cmd)
		} else {
			b.WriteString(name)
		}
		b.WriteString("\n")
	}
	line("WID", "CID", "PCID", "WorldName", "Command")
	for _, r := range rows {
		line(strconv.Itoa(r.PID), strconv.Itoa(r.CID), strconv.Itoa(r.PPID), r.Name, strings.Join(r.Cmdline, " "))
	}
	return b.String()
}
