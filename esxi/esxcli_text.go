package esxi

// Parsers for the text that esxcli and net-stats print on an ESXi host.
//
// esxcli has two text layouts (VMware's own formatter, Formatters.py in the
// esxcli Python package, shows the rules; real transcripts in
// testdata/transcripts/esxcli confirm them per build):
//
//   - "table": a header row, a row of dashes, one row per item; columns are
//     as wide as their widest cell or header and separated by two spaces;
//     integer columns are right-aligned, the others left-aligned. localcli
//     (esxcli's local twin) prints one unbroken row of dashes instead; the
//     columns are then where the header's names start.
//   - "simple": one block per item, an optional unindented header line (for
//     example the vSwitch name), then one "   Key: value" line per field
//     (three spaces of indent, lists joined with ", "); blocks are separated
//     by one blank line.
//
// net-stats -l prints a fixed printf table without a dashes row.
//
// The parsers read the output as a whole (an SSH command's stdout); they
// skip an echoed command or shell prompt before the output and stop at the
// next prompt after it.

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/capturectl/capturectl/teaming"
)

// ParseError reports output that a parser could not make sense of.
type ParseError struct {
	// Cmd names the command whose output was parsed, e.g. "esxcli network vm list".
	Cmd string
	// Line is the 1-based line of the input the error is about, 0 when it is
	// about the input as a whole (for example, no table header at all).
	Line int
	// Err says what is wrong.
	Err error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("esxi: parse %s output: line %d: %v", e.Cmd, e.Line, e.Err)
	}
	return fmt.Sprintf("esxi: parse %s output: %v", e.Cmd, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Command names used in ParseError.Cmd.
const (
	cmdVMList          = "esxcli network vm list"
	cmdVMPortList      = "esxcli network vm port list"
	cmdVSwitchList     = "esxcli network vswitch standard list"
	cmdFailoverGet     = "esxcli network vswitch standard policy failover get"
	cmdPortgroupList   = "esxcli network vswitch standard portgroup list"
	cmdNICList         = "esxcli network nic list"
	cmdVMProcessList   = "esxcli vm process list"
	cmdNetStatsList    = "net-stats -l"
	maxParseInputBytes = 64 << 20
)

// errNoOutput is wrapped when the input holds nothing but prompts and blanks.
var errNoOutput = errors.New("no output")

// ---------------------------------------------------------------------------
// Typed results

// VM is one row of "esxcli network vm list".
type VM struct {
	// WorldID is the VM's world ID (not vim-cmd's Vmid); it is the -w
	// argument of "esxcli network vm port list".
	WorldID uint64
	Name    string
	// NumPorts is the number of virtual NIC ports of the VM.
	NumPorts int
	// Networks are the port group names of the VM's ports, as listed (a
	// network appears once per port attached to it).
	Networks []string
}

// VMPort is one block of "esxcli network vm port list -w WORLDID": a vNIC's
// vSwitch port.
type VMPort struct {
	// PortID is the vSwitch port number (pktcap-uw --switchport).
	PortID    uint32
	VSwitch   string
	Portgroup string
	// DVPortID is empty on a standard vSwitch.
	DVPortID string
	MAC      string
	// IP is as printed; 0.0.0.0 when VMware Tools reports no address.
	IP string
	// TeamUplink is the uplink (vmnicN) the port currently transmits on and,
	// by reverse teaming, accepts inbound frames from. It is empty when ESXi
	// printed "void" (no uplink; TeamUplinkVoid is then set) or nothing.
	TeamUplink     string
	TeamUplinkVoid bool
	// UplinkPortID is the vSwitch port number of TeamUplink (0 when void).
	UplinkPortID  uint32
	ActiveFilters string
	// Extra holds keys this package does not know, by key; nil when none.
	Extra map[string]string
}

// VSwitch is one block of "esxcli network vswitch standard list".
type VSwitch struct {
	Name string
	// Class is "etherswitch" on older builds and "cswitch" on newer ones.
	Class            string
	NumPorts         int
	UsedPorts        int
	ConfiguredPorts  int
	MTU              int
	CDPStatus        string
	BeaconEnabled    bool
	BeaconInterval   int
	BeaconThreshold  int
	BeaconRequiredBy []string
	Uplinks          []string
	Portgroups       []string
	Extra            map[string]string
}

// Load balancing values printed by the failover policy commands.
const (
	LoadBalanceSrcPort  = string(teaming.SrcPort)  // route based on originating virtual port
	LoadBalanceSrcMAC   = string(teaming.SrcMAC)   // route based on source MAC hash
	LoadBalanceIPHash   = string(teaming.IPHash)   // route based on IP hash
	LoadBalanceExplicit = string(teaming.Explicit) // use explicit failover order
)

// TeamingPolicyName maps an esxcli Load Balancing value to the vSphere API's
// HostNicTeamingPolicy.policy name (loadbalance_srcid, loadbalance_srcmac,
// loadbalance_ip, failover_explicit). ok is false for a value it does not know.
func TeamingPolicyName(loadBalancing string) (name string, ok bool) {
	p := teaming.Policy(loadBalancing)
	return p.API(), p.Valid()
}

// FailoverPolicy is the output of "esxcli network vswitch standard policy
// failover get -v VSWITCH" or of "esxcli network vswitch standard portgroup
// policy failover get -p PORTGROUP" (the effective policy of the port group,
// plus which parts override the vSwitch).
type FailoverPolicy struct {
	// LoadBalancing is one of the LoadBalance* values.
	LoadBalancing string
	// NetworkFailureDetection is "link" or "beacon".
	NetworkFailureDetection string
	NotifySwitches          bool
	Failback                bool
	ActiveAdapters          []string
	StandbyAdapters         []string
	UnusedAdapters          []string
	// Overrides is set when the output has any "Override Vswitch ..." key,
	// that is for the port group command.
	Overrides *FailoverOverrides
	Extra     map[string]string
}

// FailoverOverrides says which parts of a port group's failover policy
// override its vSwitch's ("Override Vswitch ...: true").
type FailoverOverrides struct {
	LoadBalancing           bool
	NetworkFailureDetection bool
	NotifySwitches          bool
	Failback                bool
	Uplinks                 bool
}

// Portgroup is one row of "esxcli network vswitch standard portgroup list".
type Portgroup struct {
	Name          string
	VSwitch       string
	ActiveClients int
	// VLANID is 0 for none, 4095 for all (guest tagging).
	VLANID int
}

// NIC is one row of "esxcli network nic list".
type NIC struct {
	Name      string
	PCIDevice string
	Driver    string
	// AdminStatus is empty on builds whose table has no Admin Status column
	// (5.5 and older).
	AdminStatus string
	// LinkStatus is "Up" or "Down" (the column is "Link" on 5.5 and older).
	LinkStatus string
	// Speed is in Mbit/s; 0 when the link is down.
	Speed       int
	Duplex      string
	MAC         string
	MTU         int
	Description string
	// Extra holds columns this package does not know, by header; nil when none.
	Extra map[string]string
}

// VMProcess is one block of "esxcli vm process list" (running VMs only).
type VMProcess struct {
	DisplayName string
	// WorldID is the VM's world ID, as in "esxcli network vm list".
	WorldID     uint64
	ProcessID   uint64
	VMXCartelID uint64
	// UUID is as printed, e.g. "56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 10";
	// see CanonicalUUID.
	UUID       string
	ConfigFile string
	Extra      map[string]string
}

// CanonicalUUID turns the UUID printed by "esxcli vm process list" (16 hex
// bytes separated by spaces and one dash) into the 8-4-4-4-12 lowercase form,
// keeping the byte order as printed.
func CanonicalUUID(printed string) (string, error) {
	var hex []byte
	for i := 0; i < len(printed); i++ {
		c := printed[i]
		switch {
		case c == ' ' || c == '-':
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			hex = append(hex, c)
		case 'A' <= c && c <= 'F':
			hex = append(hex, c+'a'-'A')
		default:
			return "", fmt.Errorf("esxi: uuid %q: unexpected character %q", printed, c)
		}
	}
	if len(hex) != 32 {
		return "", fmt.Errorf("esxi: uuid %q: %d hex digits, want 32", printed, len(hex))
	}
	s := string(hex)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32], nil
}

// Port types in the Type column of net-stats -l.
const (
	NetStatsTypeVmknic = 3 // a VMkernel NIC (vmkN)
	NetStatsTypeUplink = 4 // a physical uplink (vmnicN)
	NetStatsTypeVNIC   = 5 // a VM's virtual NIC (SubType 9, 7 also seen)
)

// NetStatsPort is one row of "net-stats -l".
type NetStatsPort struct {
	// PortNum is the vSwitch port number (pktcap-uw --switchport).
	PortNum uint32
	// Type is one of the NetStatsType* values (0 is seen for NSX vdrPort).
	Type    int
	SubType int
	// SwitchName is the portset: vSwitchN for a standard vSwitch,
	// DvsPortset-N for a distributed one.
	SwitchName string
	MAC        string
	// ClientName is the vmnic, the vmk, or "<VM name>.ethN" (older hosts
	// print the VM name alone); it may contain spaces.
	ClientName string
}

// ---------------------------------------------------------------------------
// Entry points

// ParseVMList parses the output of "esxcli network vm list".
func ParseVMList(r io.Reader) ([]VM, error) {
	lines, err := readLines(cmdVMList, r)
	if err != nil {
		return nil, err
	}
	t, err := parseTable(cmdVMList, lines, "World ID")
	if err != nil {
		return nil, err
	}
	if err := t.require("World ID", "Name", "Num Ports", "Networks"); err != nil {
		return nil, err
	}
	vms := make([]VM, 0, len(t.rows))
	for _, row := range t.rows {
		var cells []string
		if all, err := t.cellsOf(row); err == nil {
			cells = []string{all[t.index["World ID"]], all[t.index["Name"]], all[t.index["Num Ports"]], all[t.index["Networks"]]}
		} else if cells, err = vmListAnchorSplit(row.text); err != nil {
			return nil, &ParseError{Cmd: cmdVMList, Line: row.line, Err: err}
		}
		var vm VM
		var err error
		if vm.WorldID, err = strconv.ParseUint(cells[0], 10, 64); err != nil {
			return nil, &ParseError{Cmd: cmdVMList, Line: row.line, Err: fmt.Errorf("world id %q: %w", cells[0], err)}
		}
		vm.Name = cells[1]
		if vm.NumPorts, err = strconv.Atoi(cells[2]); err != nil || vm.NumPorts < 0 {
			return nil, &ParseError{Cmd: cmdVMList, Line: row.line, Err: fmt.Errorf("num ports %q: not a count", cells[2])}
		}
		vm.Networks = splitList(cells[3])
		vms = append(vms, vm)
	}
	return vms, nil
}

// vmListAnchorSplit splits a row whose cells do not line up with the dashes
// row (a damaged copy): World ID is the first field and Num Ports the first
// numeric field after the name whose count matches the networks that follow
// (or, failing that, the first numeric field after the name). Runs of spaces
// inside the name and networks collapse to one.
func vmListAnchorSplit(row string) ([]string, error) {
	f := strings.Fields(row)
	if len(f) < 3 {
		return nil, fmt.Errorf("row %q: want world id, name, num ports and networks", row)
	}
	first := -1
	for k := 2; k < len(f); k++ {
		n, err := strconv.Atoi(f[k])
		if err != nil || n < 0 {
			continue
		}
		if first < 0 {
			first = k
		}
		if len(splitList(strings.Join(f[k+1:], " "))) == n {
			first = k
			break
		}
	}
	if first < 0 {
		return nil, fmt.Errorf("row %q: no numeric num ports field after the name", row)
	}
	return []string{f[0], strings.Join(f[1:first], " "), f[first], strings.Join(f[first+1:], " ")}, nil
}

// ParseVMPortList parses the output of "esxcli network vm port list -w
// WORLDID". Output without any block (a VM without ports) gives an empty
// slice.
func ParseVMPortList(r io.Reader) ([]VMPort, error) {
	lines, err := readLines(cmdVMPortList, r)
	if err != nil {
		return nil, err
	}
	blocks, err := parseBlocks(cmdVMPortList, lines, false)
	if err != nil {
		return nil, err
	}
	ports := make([]VMPort, 0, len(blocks))
	for _, b := range blocks {
		var p VMPort
		seenID := false
		for _, f := range b.fields {
			var err error
			switch f.key {
			case "Port ID":
				p.PortID, err = f.uint32()
				seenID = true
			case "vSwitch":
				p.VSwitch = f.value
			case "Portgroup":
				p.Portgroup = f.value
			case "DVPort ID":
				p.DVPortID = f.value
			case "MAC Address":
				p.MAC = f.value
			case "IP Address":
				p.IP = f.value
			case "Team Uplink":
				if f.value == "void" {
					p.TeamUplinkVoid = true
				} else {
					p.TeamUplink = f.value
				}
			case "Uplink Port ID":
				p.UplinkPortID, err = f.uint32()
			case "Active Filters":
				p.ActiveFilters = f.value
			default:
				p.Extra = addExtra(p.Extra, f.key, f.value)
			}
			if err != nil {
				return nil, &ParseError{Cmd: cmdVMPortList, Line: f.line, Err: err}
			}
		}
		if !seenID {
			return nil, &ParseError{Cmd: cmdVMPortList, Line: b.line, Err: errors.New(`block has no "Port ID"`)}
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// ParseVSwitchList parses the output of "esxcli network vswitch standard list".
func ParseVSwitchList(r io.Reader) ([]VSwitch, error) {
	lines, err := readLines(cmdVSwitchList, r)
	if err != nil {
		return nil, err
	}
	blocks, err := parseBlocks(cmdVSwitchList, lines, true)
	if err != nil {
		return nil, err
	}
	out := make([]VSwitch, 0, len(blocks))
	for _, b := range blocks {
		var v VSwitch
		for _, f := range b.fields {
			var err error
			switch f.key {
			case "Name":
				v.Name = f.value
			case "Class":
				v.Class = f.value
			case "Num Ports":
				v.NumPorts, err = f.int()
			case "Used Ports":
				v.UsedPorts, err = f.int()
			case "Configured Ports":
				v.ConfiguredPorts, err = f.int()
			case "MTU":
				v.MTU, err = f.int()
			case "CDP Status":
				v.CDPStatus = f.value
			case "Beacon Enabled":
				v.BeaconEnabled, err = f.bool()
			case "Beacon Interval":
				v.BeaconInterval, err = f.int()
			case "Beacon Threshold":
				v.BeaconThreshold, err = f.int()
			case "Beacon Required By":
				v.BeaconRequiredBy = splitList(f.value)
			case "Uplinks":
				v.Uplinks = splitList(f.value)
			case "Portgroups":
				v.Portgroups = splitList(f.value)
			default:
				v.Extra = addExtra(v.Extra, f.key, f.value)
			}
			if err != nil {
				return nil, &ParseError{Cmd: cmdVSwitchList, Line: f.line, Err: err}
			}
		}
		if v.Name == "" {
			v.Name = b.header
		}
		if v.Name == "" {
			return nil, &ParseError{Cmd: cmdVSwitchList, Line: b.line, Err: errors.New("vSwitch block has no name")}
		}
		out = append(out, v)
	}
	return out, nil
}

// ParseFailoverPolicy parses the output of "esxcli network vswitch standard
// policy failover get -v VSWITCH" or "esxcli network vswitch standard
// portgroup policy failover get -p PORTGROUP".
func ParseFailoverPolicy(r io.Reader) (FailoverPolicy, error) {
	var p FailoverPolicy
	lines, err := readLines(cmdFailoverGet, r)
	if err != nil {
		return p, err
	}
	blocks, err := parseBlocks(cmdFailoverGet, lines, false)
	if err != nil {
		return p, err
	}
	switch {
	case len(blocks) == 0:
		return p, &ParseError{Cmd: cmdFailoverGet, Err: errNoOutput}
	case len(blocks) > 1:
		return p, &ParseError{Cmd: cmdFailoverGet, Line: blocks[1].line, Err: errors.New("more than one policy in the output")}
	}
	ov := func() *FailoverOverrides {
		if p.Overrides == nil {
			p.Overrides = new(FailoverOverrides)
		}
		return p.Overrides
	}
	known := false
	for _, f := range blocks[0].fields {
		var err error
		k := true
		switch f.key {
		case "Load Balancing":
			p.LoadBalancing = f.value
		case "Network Failure Detection":
			p.NetworkFailureDetection = f.value
		case "Notify Switches":
			p.NotifySwitches, err = f.bool()
		case "Failback":
			p.Failback, err = f.bool()
		case "Active Adapters":
			p.ActiveAdapters = splitList(f.value)
		case "Standby Adapters":
			p.StandbyAdapters = splitList(f.value)
		case "Unused Adapters":
			p.UnusedAdapters = splitList(f.value)
		case "Override Vswitch Load Balancing":
			ov().LoadBalancing, err = f.bool()
		case "Override Vswitch Network Failure Detection":
			ov().NetworkFailureDetection, err = f.bool()
		case "Override Vswitch Notify Switches":
			ov().NotifySwitches, err = f.bool()
		case "Override Vswitch Failback":
			ov().Failback, err = f.bool()
		case "Override Vswitch Uplinks":
			ov().Uplinks, err = f.bool()
		default:
			k = false
			p.Extra = addExtra(p.Extra, f.key, f.value)
		}
		known = known || k
		if err != nil {
			return p, &ParseError{Cmd: cmdFailoverGet, Line: f.line, Err: err}
		}
	}
	if !known {
		return p, &ParseError{Cmd: cmdFailoverGet, Line: blocks[0].line, Err: errors.New("no failover policy key in the output")}
	}
	return p, nil
}

// ParsePortgroupList parses the output of "esxcli network vswitch standard
// portgroup list".
func ParsePortgroupList(r io.Reader) ([]Portgroup, error) {
	lines, err := readLines(cmdPortgroupList, r)
	if err != nil {
		return nil, err
	}
	t, err := parseTable(cmdPortgroupList, lines, "Name")
	if err != nil {
		return nil, err
	}
	if err := t.require("Name", "Virtual Switch", "Active Clients", "VLAN ID"); err != nil {
		return nil, err
	}
	out := make([]Portgroup, 0, len(t.rows))
	for _, row := range t.rows {
		cells, err := t.cellsOf(row)
		if err != nil {
			return nil, &ParseError{Cmd: cmdPortgroupList, Line: row.line, Err: err}
		}
		pg := Portgroup{Name: cells[t.index["Name"]], VSwitch: cells[t.index["Virtual Switch"]]}
		if pg.ActiveClients, err = atoiCell("active clients", cells[t.index["Active Clients"]]); err != nil {
			return nil, &ParseError{Cmd: cmdPortgroupList, Line: row.line, Err: err}
		}
		if pg.VLANID, err = atoiCell("vlan id", cells[t.index["VLAN ID"]]); err != nil {
			return nil, &ParseError{Cmd: cmdPortgroupList, Line: row.line, Err: err}
		}
		out = append(out, pg)
	}
	return out, nil
}

// ParseNICList parses the output of "esxcli network nic list", locating the
// cells by the header's column positions. It accepts the 5.5-era header
// (no Admin Status, "Link" for Link Status) and keeps unknown columns in
// NIC.Extra.
func ParseNICList(r io.Reader) ([]NIC, error) {
	lines, err := readLines(cmdNICList, r)
	if err != nil {
		return nil, err
	}
	t, err := parseTable(cmdNICList, lines, "Name")
	if err != nil {
		return nil, err
	}
	link := "Link Status"
	if _, ok := t.index[link]; !ok {
		link = "Link"
	}
	if err := t.require("Name", link, "Speed", "MAC Address"); err != nil {
		return nil, err
	}
	out := make([]NIC, 0, len(t.rows))
	for _, row := range t.rows {
		cells, err := t.cellsOf(row)
		if err != nil {
			return nil, &ParseError{Cmd: cmdNICList, Line: row.line, Err: err}
		}
		var n NIC
		for i, c := range t.cols {
			v := cells[i]
			switch c.name {
			case "Name":
				n.Name = v
			case "PCI Device":
				n.PCIDevice = v
			case "Driver":
				n.Driver = v
			case "Admin Status":
				n.AdminStatus = v
			case link:
				n.LinkStatus = v
			case "Speed":
				n.Speed, err = atoiCell("speed", v)
			case "Duplex":
				n.Duplex = v
			case "MAC Address":
				n.MAC = v
			case "MTU":
				n.MTU, err = atoiCell("mtu", v)
			case "Description":
				n.Description = v
			default:
				n.Extra = addExtra(n.Extra, c.name, v)
			}
			if err != nil {
				return nil, &ParseError{Cmd: cmdNICList, Line: row.line, Err: err}
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseVMProcessList parses the output of "esxcli vm process list". Output
// without any block (no running VM; 5.5 prints nothing) gives an empty slice.
func ParseVMProcessList(r io.Reader) ([]VMProcess, error) {
	lines, err := readLines(cmdVMProcessList, r)
	if err != nil {
		return nil, err
	}
	blocks, err := parseBlocks(cmdVMProcessList, lines, true)
	if err != nil {
		return nil, err
	}
	out := make([]VMProcess, 0, len(blocks))
	for _, b := range blocks {
		var p VMProcess
		seenID := false
		for _, f := range b.fields {
			var err error
			switch f.key {
			case "World ID":
				p.WorldID, err = f.uint64()
				seenID = true
			case "Process ID":
				p.ProcessID, err = f.uint64()
			case "VMX Cartel ID":
				p.VMXCartelID, err = f.uint64()
			case "UUID":
				p.UUID = f.value
			case "Display Name":
				p.DisplayName = f.value
			case "Config File":
				p.ConfigFile = f.value
			default:
				p.Extra = addExtra(p.Extra, f.key, f.value)
			}
			if err != nil {
				return nil, &ParseError{Cmd: cmdVMProcessList, Line: f.line, Err: err}
			}
		}
		if !seenID {
			return nil, &ParseError{Cmd: cmdVMProcessList, Line: b.line, Err: errors.New(`block has no "World ID"`)}
		}
		if p.DisplayName == "" {
			p.DisplayName = b.header
		}
		out = append(out, p)
	}
	return out, nil
}

// netStatsRow is a net-stats -l row: port, type, subtype, switch name (may
// hold spaces), MAC, client name (may hold spaces or be absent).
var netStatsRow = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S.*?)\s+([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})(?:\s+(.*?))?\s*$`)

// ParseNetStatsPorts parses the output of "net-stats -l".
func ParseNetStatsPorts(r io.Reader) ([]NetStatsPort, error) {
	lines, err := readLines(cmdNetStatsList, r)
	if err != nil {
		return nil, err
	}
	i := skipLeading(lines)
	if i == len(lines) {
		return nil, &ParseError{Cmd: cmdNetStatsList, Err: errNoOutput}
	}
	hdr := strings.Fields(lines[i])
	if len(hdr) < 6 || hdr[0] != "PortNum" || hdr[1] != "Type" || hdr[4] != "MACAddress" {
		return nil, &ParseError{Cmd: cmdNetStatsList, Line: i + 1, Err: fmt.Errorf("want the header PortNum Type SubType SwitchName MACAddress ClientName, got %q", lines[i])}
	}
	var out []NetStatsPort
	end, err := tableEnd(cmdNetStatsList, lines, i+1)
	if err != nil {
		return nil, err
	}
	for j := i + 1; j < end; j++ {
		m := netStatsRow.FindStringSubmatch(lines[j])
		if m == nil {
			return nil, &ParseError{Cmd: cmdNetStatsList, Line: j + 1, Err: fmt.Errorf("row %q: want port, type, subtype, switch, MAC and client", lines[j])}
		}
		var p NetStatsPort
		n, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return nil, &ParseError{Cmd: cmdNetStatsList, Line: j + 1, Err: fmt.Errorf("port number %q: %w", m[1], err)}
		}
		p.PortNum = uint32(n)
		if p.Type, err = atoiCell("type", m[2]); err != nil {
			return nil, &ParseError{Cmd: cmdNetStatsList, Line: j + 1, Err: err}
		}
		if p.SubType, err = atoiCell("subtype", m[3]); err != nil {
			return nil, &ParseError{Cmd: cmdNetStatsList, Line: j + 1, Err: err}
		}
		p.SwitchName, p.MAC, p.ClientName = m[4], m[5], m[6]
		out = append(out, p)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Lines, prompts

// readLines reads the whole input and splits it into lines without their
// "\n" or "\r\n".
func readLines(cmd string, r io.Reader) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxParseInputBytes+1))
	if err != nil {
		return nil, &ParseError{Cmd: cmd, Err: fmt.Errorf("read: %w", err)}
	}
	if len(b) > maxParseInputBytes {
		return nil, &ParseError{Cmd: cmd, Err: fmt.Errorf("output longer than %d bytes", maxParseInputBytes)}
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil, nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}

var (
	// shellPrompt matches an ESXi shell prompt ("[root@esx01:~] ...",
	// "[root@vc1] ...", "~ # ..."), one pasted without its "[" (a real
	// case: "root@NX-1050-A:~] esxcli ..."), or a generic "user@host:dir# "
	// one.
	shellPrompt = regexp.MustCompile(`^\s*(?:\[[^\]]*@[^\]]*\]|~ ?#|[\w.-]+@[\w.-]+:[^\s\]]*\]|[\w.-]+@[\w.-]+:\S*\s?[#$])(?:\s|$)`)
	// bareEcho matches an echoed command without a prompt, or behind a
	// "# " or "$ " prompt as copied into notes, the "#" touching the
	// command too ("#esxcli network vswitch standard portgroup list =>").
	bareEcho = regexp.MustCompile(`^\s*(?:[#$]\s*)?(?:/s?bin/|/usr/s?bin/)?(?:esxcli|localcli|net-stats)(?:\s|$)|^\s*[#$]\s*$`)
)

// isPrompt reports whether l is a shell prompt or an echoed command rather
// than command output.
func isPrompt(l string) bool { return shellPrompt.MatchString(l) || bareEcho.MatchString(l) }

func isBlank(l string) bool { return strings.TrimSpace(l) == "" }

// skipLeading returns the index of the first line that is neither blank nor
// a prompt.
func skipLeading(lines []string) int {
	i := 0
	for i < len(lines) && (isBlank(lines[i]) || isPrompt(lines[i])) {
		i++
	}
	return i
}

// tableEnd returns the index just past the last row of a table whose rows
// start at from: rows end at a blank line, a prompt, or the end. After a
// blank line only blanks or a prompt (where the next command starts) may
// follow.
func tableEnd(cmd string, lines []string, from int) (int, error) {
	end := from
	for end < len(lines) && !isBlank(lines[end]) && !isPrompt(lines[end]) {
		end++
	}
	for j := end; j < len(lines); j++ {
		if isPrompt(lines[j]) {
			break
		}
		if !isBlank(lines[j]) {
			return 0, &ParseError{Cmd: cmd, Line: j + 1, Err: fmt.Errorf("unexpected text after the table: %q", lines[j])}
		}
	}
	return end, nil
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeftFunc(l, unicode.IsSpace)) }

// ---------------------------------------------------------------------------
// Tables

type tableColumn struct {
	name       string
	start, end int // rune offsets of the dashes run; end is exclusive
}

type tableRow struct {
	line int // 1-based
	text string
}

type table struct {
	cmd   string
	cols  []tableColumn
	index map[string]int
	rows  []tableRow
}

var dashesLine = regexp.MustCompile(`^\s*-+(?: +-+)*\s*$`)

// parseTable finds the header row (whose first column is firstCol) and its
// dashes row, and collects the rows after them.
func parseTable(cmd string, lines []string, firstCol string) (*table, error) {
	i := skipLeading(lines)
	if i == len(lines) {
		return nil, &ParseError{Cmd: cmd, Err: errNoOutput}
	}
	if i+1 >= len(lines) || !dashesLine.MatchString(lines[i+1]) || !strings.HasPrefix(strings.TrimSpace(lines[i]), firstCol) {
		return nil, &ParseError{Cmd: cmd, Line: i + 1, Err: fmt.Errorf("want a table header starting with %q and a row of dashes, got %q", firstCol, lines[i])}
	}
	header := []rune(lines[i])
	dashes := []rune(lines[i+1])
	t := &table{cmd: cmd, index: make(map[string]int)}
	for k := 0; k < len(dashes); {
		if dashes[k] != '-' {
			k++
			continue
		}
		s := k
		for k < len(dashes) && dashes[k] == '-' {
			k++
		}
		t.cols = append(t.cols, tableColumn{start: s, end: k})
	}
	if len(t.cols) == 1 {
		// localcli prints one unbroken row of dashes under the whole header
		// (localcli-network-nic-list_fcy-mac01-6.7.txt): the columns are
		// then where the header's names start, each ending two spaces
		// before the next.
		if cols := headerColumns(header); len(cols) > 1 {
			t.cols = cols
		}
	}
	for c := range t.cols {
		lo, hi := t.cols[c].start, len(header)
		if c+1 < len(t.cols) {
			hi = t.cols[c+1].start
		}
		name := strings.TrimSpace(runeSlice(header, lo, hi))
		if name == "" {
			return nil, &ParseError{Cmd: cmd, Line: i + 1, Err: fmt.Errorf("no header above column %d", c+1)}
		}
		if _, dup := t.index[name]; dup {
			return nil, &ParseError{Cmd: cmd, Line: i + 1, Err: fmt.Errorf("column %q appears twice", name)}
		}
		t.cols[c].name = name
		t.index[name] = c
	}
	end, err := tableEnd(cmd, lines, i+2)
	if err != nil {
		return nil, err
	}
	for j := i + 2; j < end; j++ {
		t.rows = append(t.rows, tableRow{line: j + 1, text: lines[j]})
	}
	return t, nil
}

// headerColumns returns the columns of a header row whose names are
// separated by two or more spaces (a name may hold single spaces, as
// "PCI Device" does), from where each name starts.
func headerColumns(header []rune) []tableColumn {
	var cols []tableColumn
	for k := 0; k < len(header); {
		if unicode.IsSpace(header[k]) {
			k++
			continue
		}
		s := k
		for k < len(header) && !(unicode.IsSpace(header[k]) && (k+1 == len(header) || unicode.IsSpace(header[k+1]))) {
			k++
		}
		cols = append(cols, tableColumn{start: s})
	}
	for c := range cols {
		if c+1 < len(cols) {
			cols[c].end = cols[c+1].start - 2
		} else {
			cols[c].end = len(header)
		}
	}
	return cols
}

// require checks that the table has the named columns.
func (t *table) require(names ...string) error {
	for _, n := range names {
		if _, ok := t.index[n]; !ok {
			return &ParseError{Cmd: t.cmd, Err: fmt.Errorf("table has no %q column (columns: %s)", n, t.names())}
		}
	}
	return nil
}

func (t *table) names() string {
	var b strings.Builder
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name)
	}
	return b.String()
}

// cellsOf cuts a row at the column positions of the dashes row. A row whose
// text crosses the gap between two columns does not line up (a damaged
// copy); cellsOf then splits it at runs of two or more spaces if that gives
// one field per column, and fails otherwise.
func (t *table) cellsOf(row tableRow) ([]string, error) {
	rs := []rune(row.text)
	cells := make([]string, len(t.cols))
	aligned := true
	for c, col := range t.cols {
		hi := len(rs)
		if c+1 < len(t.cols) {
			hi = t.cols[c+1].start
			// The gap after this column's dashes must be blank.
			for k := col.end; k < hi && k < len(rs); k++ {
				if !unicode.IsSpace(rs[k]) {
					aligned = false
				}
			}
		}
		if c > 0 && col.start-1 < len(rs) && col.start-1 >= 0 && !unicode.IsSpace(rs[col.start-1]) {
			aligned = false
		}
		cells[c] = strings.TrimSpace(runeSlice(rs, col.start, hi))
	}
	if aligned {
		return cells, nil
	}
	fields := splitOnWideSpace(strings.TrimSpace(row.text))
	if len(fields) == len(t.cols) {
		return fields, nil
	}
	return nil, fmt.Errorf("row %q does not line up with the %d columns (%s)", row.text, len(t.cols), t.names())
}

var wideSpace = regexp.MustCompile(`\s{2,}`)

func splitOnWideSpace(s string) []string { return wideSpace.Split(s, -1) }

func runeSlice(rs []rune, lo, hi int) string {
	if lo > len(rs) {
		lo = len(rs)
	}
	if hi > len(rs) {
		hi = len(rs)
	}
	if hi < lo {
		hi = lo
	}
	return string(rs[lo:hi])
}

func atoiCell(what, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", what, v, err)
	}
	return n, nil
}

// ---------------------------------------------------------------------------
// Simple (key: value) blocks

type field struct {
	line       int
	key, value string
}

func (f field) wrap(err error) error { return fmt.Errorf("%s %q: %w", f.key, f.value, err) }

func (f field) int() (int, error) {
	n, err := strconv.Atoi(f.value)
	if err != nil {
		return 0, f.wrap(err)
	}
	return n, nil
}

func (f field) uint32() (uint32, error) {
	n, err := strconv.ParseUint(f.value, 10, 32)
	if err != nil {
		return 0, f.wrap(err)
	}
	return uint32(n), nil
}

func (f field) uint64() (uint64, error) {
	n, err := strconv.ParseUint(f.value, 10, 64)
	if err != nil {
		return 0, f.wrap(err)
	}
	return n, nil
}

func (f field) bool() (bool, error) {
	switch f.value {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, f.wrap(errors.New(`want "true" or "false"`))
}

type block struct {
	line   int // 1-based line of the header, or of the first field
	header string
	fields []field
	keys   map[string]bool
}

var keyShape = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9 ()/._-]*$`)

// splitKV splits a "Key: value" line (already trimmed of leading space). A
// key with no value may or may not have the space after its colon.
func splitKV(t string) (key, value string, ok bool) {
	if i := strings.Index(t, ": "); i >= 0 {
		key, value = t[:i], strings.TrimSpace(t[i+2:])
	} else if strings.HasSuffix(t, ":") {
		key = t[:len(t)-1]
	} else {
		return "", "", false
	}
	if !keyShape.MatchString(key) || strings.HasSuffix(key, " ") {
		return "", "", false
	}
	return key, value, true
}

// parseBlocks reads esxcli's simple format. With headers, an unindented line
// directly followed by a more indented key line starts a block and names it.
// Without headers (or when no header line precedes), a block starts at its
// first key line; a key that repeats within a block also starts a new block.
// Prompts before the first block are skipped; the first prompt after it ends
// the output.
func parseBlocks(cmd string, lines []string, headers bool) ([]block, error) {
	var blocks []block
	var cur *block
	started := false
	fieldIndent, fieldLine := -1, 0
	newBlock := func(line int, header string) {
		blocks = append(blocks, block{line: line, header: header, keys: make(map[string]bool)})
		cur = &blocks[len(blocks)-1]
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if isBlank(l) {
			cur = nil
			continue
		}
		t := strings.TrimSpace(l)
		if headers && i+1 < len(lines) && !isBlank(lines[i+1]) && indentOf(lines[i+1]) > indentOf(l) {
			if _, _, ok := splitKV(strings.TrimSpace(lines[i+1])); ok && !(isPrompt(l) && !started) {
				newBlock(i+1, t)
				started = true
				continue
			}
		}
		if isPrompt(l) {
			if started {
				break
			}
			continue
		}
		key, value, ok := splitKV(t)
		if !ok {
			return nil, &ParseError{Cmd: cmd, Line: i + 1, Err: fmt.Errorf("want a %q line, got %q", "Key: value", l)}
		}
		// All field lines share one indent (three spaces as printed); a
		// line at another indent is not part of the output (e.g. "sh: ...").
		if fieldIndent < 0 {
			fieldIndent, fieldLine = indentOf(l), i+1
		} else if indentOf(l) != fieldIndent {
			return nil, &ParseError{Cmd: cmd, Line: i + 1, Err: fmt.Errorf("%q is not indented like the %q line %d", l, "Key: value", fieldLine)}
		}
		if cur == nil || cur.keys[key] {
			newBlock(i+1, "")
		}
		cur.keys[key] = true
		cur.fields = append(cur.fields, field{line: i + 1, key: key, value: value})
		started = true
	}
	for _, b := range blocks {
		if len(b.fields) == 0 {
			return nil, &ParseError{Cmd: cmd, Line: b.line, Err: fmt.Errorf("block %q has no fields", b.header)}
		}
	}
	return blocks, nil
}

// splitList splits an esxcli list value ("a, b, c"); empty gives nil.
func splitList(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ", ")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func addExtra(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = make(map[string]string)
	}
	m[k] = v
	return m
}
