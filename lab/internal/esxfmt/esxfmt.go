package esxfmt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Layout holds the choices of esxcli's text layout that differ between ESXi
// builds. The zero value is the 6.7 layout.
type Layout struct {
	// ShortLastDashes makes the dashes under a left-aligned last table
	// column (Networks, Description) only as long as the column's header
	// instead of as long as its widest cell. Seen on a host with a 7.x/8.x
	// login banner (transcript network-nic-list_more-poodle.txt) and written
	// so by VMware's Formatters.py (2022); 5.5 and 6.7 transcripts show
	// full-width dashes.
	ShortLastDashes bool
	// OldNICColumns gives "esxcli network nic list" the 5.5 columns: no
	// Admin Status, and "Link" instead of "Link Status".
	OldNICColumns bool
	// DVPortSpace ends "esxcli network vswitch dvs vmware list"'s
	// "DVPort:" line with a space, as other empty values are ("DVPort: ").
	// Seen on 9.0 (network-vswitch-dvs-vmware-list_esxinitya-9.0.txt); a
	// 6.x-or-later copy that kept its other trailing spaces has "DVPort:"
	// (jp-blog); 7.x/8.x output was not found and is written as 6.x.
	DVPortSpace bool
	// PadLast pads a left-aligned last table column (Networks,
	// Description) to its width like the other columns, header included,
	// and keeps the padding. Seen in one copy of "esxcli network vm list"
	// with pre-7.0 port numbers, build not stated
	// (network-vm-list_notes-6.x.txt: "Networks" and "VM Network" padded
	// to the 22 characters of "VM Network, VM Network", which no copying
	// tool could know); the 6.7, 7.0.3 and 9.0 transcripts that kept other
	// trailing spaces show no padding.
	PadLast bool
	// Localcli is the table form of localcli, esxcli's local twin, on a
	// 6.7 host (localcli-network-nic-list_fcy-mac01-6.7.txt): one unbroken
	// row of dashes as long as the header row, and every header
	// left-aligned, the integer columns' too ("MTU   Description").
	Localcli bool
}

// Layouts seen in real transcripts.
var (
	// Layout55 is ESXi 5.5 (network-nic-list_tg3-5.5.txt).
	Layout55 = Layout{OldNICColumns: true}
	// Layout67 is ESXi 6.7 (the cactus-uk-far-mon transcripts).
	Layout67 = Layout{}
	// LayoutNewer is what a 7.x/8.x host printed (more-poodle transcripts).
	LayoutNewer = Layout{ShortLastDashes: true}
	// Layout90 is ESX 9.0 (the esxinitya transcripts, build 24755229).
	Layout90 = Layout{ShortLastDashes: true, DVPortSpace: true}
	// LayoutPadded is the padded last column of a pre-7.0 host whose build
	// is not known (network-vm-list_notes-6.x.txt); no lab version uses it
	// until a transcript names the build.
	LayoutPadded = Layout{PadLast: true}
	// LayoutLocalcli67 is localcli's table form on 6.7; the lab answers
	// esxcli only.
	LayoutLocalcli67 = Layout{Localcli: true}
)

var errLineBreak = errors.New("value contains a line break")

// checkText rejects values that would break the line structure.
func checkText(what, v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("esxfmt: %s %q: %w", what, v, errLineBreak)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Tables

type column struct {
	header string
	right  bool // integer column: right-aligned, header included
}

// writeTable writes an esxcli table.
func writeTable(w io.Writer, l Layout, cols []column, rows [][]string) error {
	width := make([]int, len(cols))
	for i, c := range cols {
		width[i] = utf8.RuneCountInString(c.header)
	}
	for _, r := range rows {
		for i, cell := range r {
			if err := checkText(cols[i].header, cell); err != nil {
				return err
			}
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	dashes := make([]string, len(cols))
	for i := range cols {
		dashes[i] = strings.Repeat("-", width[i])
	}
	if last := len(cols) - 1; l.ShortLastDashes && !cols[last].right {
		dashes[last] = strings.Repeat("-", utf8.RuneCountInString(cols[last].header))
	}
	bw := bufio.NewWriter(w)
	line := func(cells []string, header bool) string {
		var b strings.Builder
		for i, cell := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			switch {
			case cols[i].right && !(header && l.Localcli):
				b.WriteString(pad + cell)
			case i == len(cells)-1 && !l.PadLast:
				b.WriteString(cell)
			default:
				b.WriteString(cell + pad)
			}
		}
		row := b.String()
		if !l.PadLast {
			row = strings.TrimRight(row, " ")
		}
		bw.WriteString(row)
		bw.WriteByte('\n')
		return row
	}
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	headerRow := line(headers, true)
	if l.Localcli {
		bw.WriteString(strings.Repeat("-", utf8.RuneCountInString(headerRow)) + "\n")
	} else {
		bw.WriteString(strings.Join(dashes, "  ") + "\n")
	}
	for _, r := range rows {
		line(r, false)
	}
	return bw.Flush()
}

// ---------------------------------------------------------------------------
// Simple blocks

type kv struct{ key, value string }

type simpleBlock struct {
	header string // "" for none
	fields []kv
}

// writeBlocks writes esxcli's simple format: blocks separated by one blank
// line, fields indented by three spaces, "Key: value" even when value is
// empty.
func writeBlocks(w io.Writer, blocks []simpleBlock) error {
	bw := bufio.NewWriter(w)
	for i, b := range blocks {
		if i > 0 {
			bw.WriteByte('\n')
		}
		if b.header != "" {
			if err := checkText("header", b.header); err != nil {
				return err
			}
			bw.WriteString(b.header + "\n")
		}
		if err := writeFields(bw, "   ", b.fields); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writeFields writes "Key: value" lines at an indent (value may be empty).
func writeFields(bw *bufio.Writer, indent string, fields []kv) error {
	for _, f := range fields {
		if err := checkText(f.key, f.value); err != nil {
			return err
		}
		bw.WriteString(indent + f.key + ": " + f.value + "\n")
	}
	return nil
}

func list(v []string) string { return strings.Join(v, ", ") }

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

func itoa(n int) string { return strconv.Itoa(n) }

func btoa(v bool) string { return strconv.FormatBool(v) }

// ---------------------------------------------------------------------------
// esxcli network vm list

// VM is one row of "esxcli network vm list".
type VM struct {
	WorldID  uint64
	Name     string
	NumPorts int
	// Networks are the port group names, one per port.
	Networks []string
}

// WriteVMList writes the output of "esxcli network vm list".
func WriteVMList(w io.Writer, l Layout, vms []VM) error {
	cols := []column{{"World ID", true}, {"Name", false}, {"Num Ports", true}, {"Networks", false}}
	rows := make([][]string, len(vms))
	for k, vm := range vms {
		rows[k] = []string{utoa(vm.WorldID), vm.Name, itoa(vm.NumPorts), list(vm.Networks)}
	}
	return writeTable(w, l, cols, rows)
}

// ---------------------------------------------------------------------------
// esxcli network vm port list -w WORLDID

// VMPort is one block of "esxcli network vm port list".
type VMPort struct {
	PortID    uint32
	VSwitch   string
	Portgroup string
	// DVPortID is empty on a standard vSwitch.
	DVPortID string
	MAC      string
	// IP is printed as is; real hosts print 0.0.0.0 when Tools reports none.
	IP string
	// TeamUplink is printed as is: a vmnic name, or "void" when the port has
	// no uplink (the caller chooses; real hosts then print Uplink Port ID 0).
	TeamUplink    string
	UplinkPortID  uint32
	ActiveFilters string
}

// WriteVMPortList writes the output of "esxcli network vm port list". No
// ports give no output.
func WriteVMPortList(w io.Writer, ports []VMPort) error {
	blocks := make([]simpleBlock, len(ports))
	for k, p := range ports {
		blocks[k] = simpleBlock{fields: []kv{
			{"Port ID", utoa(uint64(p.PortID))},
			{"vSwitch", p.VSwitch},
			{"Portgroup", p.Portgroup},
			{"DVPort ID", p.DVPortID},
			{"MAC Address", p.MAC},
			{"IP Address", p.IP},
			{"Team Uplink", p.TeamUplink},
			{"Uplink Port ID", utoa(uint64(p.UplinkPortID))},
			{"Active Filters", p.ActiveFilters},
		}}
	}
	return writeBlocks(w, blocks)
}

// ---------------------------------------------------------------------------
// esxcli network vswitch standard list

// VSwitch is one block of "esxcli network vswitch standard list".
type VSwitch struct {
	Name string
	// Class is "etherswitch" (older builds) or "cswitch" (newer).
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
}

// WriteVSwitchList writes the output of "esxcli network vswitch standard
// list": one block per vSwitch headed by its name.
func WriteVSwitchList(w io.Writer, vswitches []VSwitch) error {
	blocks := make([]simpleBlock, len(vswitches))
	for k, v := range vswitches {
		if v.Name == "" {
			return errors.New("esxfmt: vSwitch without a name")
		}
		blocks[k] = simpleBlock{header: v.Name, fields: []kv{
			{"Name", v.Name},
			{"Class", v.Class},
			{"Num Ports", itoa(v.NumPorts)},
			{"Used Ports", itoa(v.UsedPorts)},
			{"Configured Ports", itoa(v.ConfiguredPorts)},
			{"MTU", itoa(v.MTU)},
			{"CDP Status", v.CDPStatus},
			{"Beacon Enabled", btoa(v.BeaconEnabled)},
			{"Beacon Interval", itoa(v.BeaconInterval)},
			{"Beacon Threshold", itoa(v.BeaconThreshold)},
			{"Beacon Required By", list(v.BeaconRequiredBy)},
			{"Uplinks", list(v.Uplinks)},
			{"Portgroups", list(v.Portgroups)},
		}}
	}
	return writeBlocks(w, blocks)
}

// ---------------------------------------------------------------------------
// esxcli network vswitch standard [portgroup] policy failover get

// FailoverPolicy is the output of the vSwitch or port group "policy failover
// get" command.
type FailoverPolicy struct {
	// LoadBalancing is srcport, srcmac, iphash or explicit.
	LoadBalancing string
	// NetworkFailureDetection is link or beacon.
	NetworkFailureDetection string
	NotifySwitches          bool
	Failback                bool
	ActiveAdapters          []string
	StandbyAdapters         []string
	UnusedAdapters          []string
	// Overrides, when set, adds the port group command's "Override Vswitch
	// ..." lines.
	Overrides *FailoverOverrides
}

// FailoverOverrides are the port group command's "Override Vswitch ..." flags.
type FailoverOverrides struct {
	LoadBalancing           bool
	NetworkFailureDetection bool
	NotifySwitches          bool
	Failback                bool
	Uplinks                 bool
}

// WriteFailoverPolicy writes the output of "esxcli network vswitch standard
// policy failover get" (p.Overrides nil) or of "esxcli network vswitch
// standard portgroup policy failover get" (p.Overrides set).
//
// Evidence: the seven vSwitch keys, their order and values come from a
// reprint of real output (transcript
// network-vswitch-standard-policy-failover-get_reprint.txt, indentation lost)
// and VMware's vdnet regexes ("\s{3}Network Failure Detection: link"); the
// three-space indent and list joining are the formatter's. No verbatim port
// group output was found: the five "Override Vswitch ..." keys and their
// place after the others are an assumption.
func WriteFailoverPolicy(w io.Writer, p FailoverPolicy) error {
	fields := []kv{
		{"Load Balancing", p.LoadBalancing},
		{"Network Failure Detection", p.NetworkFailureDetection},
		{"Notify Switches", btoa(p.NotifySwitches)},
		{"Failback", btoa(p.Failback)},
		{"Active Adapters", list(p.ActiveAdapters)},
		{"Standby Adapters", list(p.StandbyAdapters)},
		{"Unused Adapters", list(p.UnusedAdapters)},
	}
	if o := p.Overrides; o != nil {
		fields = append(fields,
			kv{"Override Vswitch Load Balancing", btoa(o.LoadBalancing)},
			kv{"Override Vswitch Network Failure Detection", btoa(o.NetworkFailureDetection)},
			kv{"Override Vswitch Notify Switches", btoa(o.NotifySwitches)},
			kv{"Override Vswitch Failback", btoa(o.Failback)},
			kv{"Override Vswitch Uplinks", btoa(o.Uplinks)},
		)
	}
	return writeBlocks(w, []simpleBlock{{fields: fields}})
}

// ---------------------------------------------------------------------------
// esxcli network vswitch standard portgroup list

// Portgroup is one row of "esxcli network vswitch standard portgroup list".
type Portgroup struct {
	Name          string
	VSwitch       string
	ActiveClients int
	VLANID        int
}

// WritePortgroupList writes the output of "esxcli network vswitch standard
// portgroup list".
func WritePortgroupList(w io.Writer, l Layout, pgs []Portgroup) error {
	cols := []column{{"Name", false}, {"Virtual Switch", false}, {"Active Clients", true}, {"VLAN ID", true}}
	rows := make([][]string, len(pgs))
	for k, pg := range pgs {
		rows[k] = []string{pg.Name, pg.VSwitch, itoa(pg.ActiveClients), itoa(pg.VLANID)}
	}
	return writeTable(w, l, cols, rows)
}

// ---------------------------------------------------------------------------
// esxcli network nic list

// NIC is one row of "esxcli network nic list".
type NIC struct {
	Name      string
	PCIDevice string
	Driver    string
	// AdminStatus is not printed with Layout.OldNICColumns.
	AdminStatus string
	LinkStatus  string
	// Speed is in Mbit/s.
	Speed       int
	Duplex      string
	MAC         string
	MTU         int
	Description string
}

// WriteNICList writes the output of "esxcli network nic list".
func WriteNICList(w io.Writer, l Layout, nics []NIC) error {
	cols := []column{{"Name", false}, {"PCI Device", false}, {"Driver", false}, {"Admin Status", false}, {"Link Status", false},
		{"Speed", true}, {"Duplex", false}, {"MAC Address", false}, {"MTU", true}, {"Description", false}}
	row := func(n NIC) []string {
		return []string{n.Name, n.PCIDevice, n.Driver, n.AdminStatus, n.LinkStatus, itoa(n.Speed), n.Duplex, n.MAC, itoa(n.MTU), n.Description}
	}
	if l.OldNICColumns {
		cols = append(cols[:3:3], append([]column{{"Link", false}}, cols[5:]...)...)
		row = func(n NIC) []string {
			return []string{n.Name, n.PCIDevice, n.Driver, n.LinkStatus, itoa(n.Speed), n.Duplex, n.MAC, itoa(n.MTU), n.Description}
		}
	}
	rows := make([][]string, len(nics))
	for k, n := range nics {
		rows[k] = row(n)
	}
	return writeTable(w, l, cols, rows)
}

// ---------------------------------------------------------------------------
// esxcli vm process list

// VMProcess is one block of "esxcli vm process list".
type VMProcess struct {
	DisplayName string
	WorldID     uint64
	ProcessID   uint64
	VMXCartelID uint64
	// UUID is printed as is; see VMXUUID for the printed form.
	UUID       string
	ConfigFile string
}

// WriteVMProcessList writes the output of "esxcli vm process list": one
// block per running VM headed by its display name. No VMs give no output
// (as 5.5 shows).
func WriteVMProcessList(w io.Writer, procs []VMProcess) error {
	blocks := make([]simpleBlock, len(procs))
	for k, p := range procs {
		if p.DisplayName == "" {
			return errors.New("esxfmt: VM process without a display name")
		}
		blocks[k] = simpleBlock{header: p.DisplayName, fields: []kv{
			{"World ID", utoa(p.WorldID)},
			{"Process ID", utoa(p.ProcessID)},
			{"VMX Cartel ID", utoa(p.VMXCartelID)},
			{"UUID", p.UUID},
			{"Display Name", p.DisplayName},
			{"Config File", p.ConfigFile},
		}}
	}
	return writeBlocks(w, blocks)
}

// VMXUUID turns a canonical UUID ("564d12f0-0111-999e-2451-75dcde5f4b10")
// into the form esxcli vm process list prints: 16 lowercase hex bytes
// separated by spaces, a dash after the eighth
// ("56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 10").
func VMXUUID(canonical string) (string, error) {
	hex := strings.ToLower(strings.ReplaceAll(canonical, "-", ""))
	if len(hex) != 32 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("esxfmt: uuid %q: want 32 hex digits", canonical)
	}
	var bld strings.Builder
	for k := 0; k < 32; k += 2 {
		switch {
		case k == 16:
			bld.WriteByte('-')
		case k > 0:
			bld.WriteByte(' ')
		}
		bld.WriteString(hex[k : k+2])
	}
	return bld.String(), nil
}

// ---------------------------------------------------------------------------
// net-stats -l

// NetStatsPort is one row of "net-stats -l".
type NetStatsPort struct {
	PortNum uint32
	// Type: 3 vmknic, 4 uplink, 5 VM vNIC, 0 NSX vdrPort.
	Type       int
	SubType    int
	SwitchName string
	MAC        string
	ClientName string
}

// WriteNetStatsPorts writes the output of "net-stats -l". The printf widths
// are inferred from two transcripts (ESXi 8 DVS and a standard vSwitch
// host); a value wider than its field pushes the rest of the row right, as
// printf does.
func WriteNetStatsPorts(w io.Writer, ports []NetStatsPort) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%-16s %4s %7s %-16s %-18s %s\n", "PortNum", "Type", "SubType", "SwitchName", "MACAddress", "ClientName")
	for _, p := range ports {
		for _, v := range []string{p.SwitchName, p.MAC, p.ClientName} {
			if err := checkText("net-stats field", v); err != nil {
				return err
			}
		}
		fmt.Fprintf(bw, "%-16d %4d %7d %-16s %-18s %s\n", p.PortNum, p.Type, p.SubType, p.SwitchName, p.MAC, p.ClientName)
	}
	return bw.Flush()
}

// ---------------------------------------------------------------------------
// esxcli network vswitch dvs vmware list

// DVS is one distributed switch a host is a member of, as "esxcli network
// vswitch dvs vmware list" prints it.
type DVS struct {
	Name string
	// UUID is the switch's UUID, canonical or as esxcli prints it; it is
	// written the esxcli way ("50 17 d4 16 3d ac 54 90-c8 d0 0a 7a 4f 3c bd 0e").
	UUID string
	// Class is "etherswitch" (5.x) or "cswitch" (later builds).
	Class           string
	NumPorts        int
	UsedPorts       int
	ConfiguredPorts int
	MTU             int
	CDPStatus       string
	BeaconTimeout   int
	Uplinks         []string
	VMwareBranded   bool
	Ports           []DVSPort
}

// DVSPort is one entry of the switch's DVPort list.
type DVSPort struct {
	Client      string // vmnicN, a VM's vNIC, a vmknic; "" when not in use
	PortgroupID string // dvportgroup-NNN
	InUse       bool
	PortID      string
}

// WriteDVSList writes "esxcli network vswitch dvs vmware list": per switch
// a name line, its fields indented by three spaces, then "DVPort:" and the
// port entries indented by nine, consecutive entries separated by a line of
// six spaces (esxcli's separator in a nested list, kept by pastes that keep
// indentation). Switches are separated by a blank line. A host in no
// distributed switch prints nothing.
//
// l.DVPortSpace gives the "DVPort: " line of 9.0.
func WriteDVSList(w io.Writer, l Layout, switches []DVS) error {
	bw := bufio.NewWriter(w)
	for i, d := range switches {
		if d.Name == "" {
			return errors.New("esxfmt: distributed switch without a name")
		}
		id, err := VMXUUID(d.UUID)
		if err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte('\n')
		}
		fields := []kv{
			{"Name", d.Name},
			{"VDS ID", id},
			{"Class", d.Class},
			{"Num Ports", itoa(d.NumPorts)},
			{"Used Ports", itoa(d.UsedPorts)},
			{"Configured Ports", itoa(d.ConfiguredPorts)},
			{"MTU", itoa(d.MTU)},
			{"CDP Status", d.CDPStatus},
			{"Beacon Timeout", itoa(d.BeaconTimeout)},
			{"Uplinks", list(d.Uplinks)},
			{"VMware Branded", btoa(d.VMwareBranded)},
		}
		if err := checkText("header", d.Name); err != nil {
			return err
		}
		bw.WriteString(d.Name + "\n")
		if err := writeFields(bw, "   ", fields); err != nil {
			return err
		}
		if l.DVPortSpace {
			bw.WriteString("   DVPort: \n")
		} else {
			bw.WriteString("   DVPort:\n")
		}
		for k, p := range d.Ports {
			if p.PortID == "" {
				return fmt.Errorf("esxfmt: switch %s: a DVPort without a Port ID", d.Name)
			}
			if k > 0 {
				bw.WriteString("      \n")
			}
			if err := writeFields(bw, "         ", []kv{{"Client", p.Client}, {"DVPortgroup ID", p.PortgroupID}, {"In Use", btoa(p.InUse)}, {"Port ID", p.PortID}}); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}
