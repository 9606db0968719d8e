package audit

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/vim25"
)

// Finding IDs.
const (
	FindingBlindSpot        = "RT001"
	FindingIPHashMixed      = "RT002"
	FindingIPHashStandby    = "RT003"
	FindingMonitorOneUplink = "RT004"
	FindingLAGMixed         = "RT005"
)

// Severities of findings.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
)

// Kinds of checked objects (Object.Kind).
const (
	ObjectVSwitch     = "vswitch"
	ObjectPortgroup   = "portgroup"
	ObjectDVSwitch    = "dvswitch"
	ObjectDVPortgroup = "dvportgroup"
)

// The JSON field names of the types below are those of the audit report
// (report.AuditSchemaVersion, capturectl.audit/v1); they do not change
// within that version.

// Check describes one check of the audit.
type Check struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	// Summary says what the check finds, in a few words.
	Summary string `json:"summary"`
}

// Checks lists every check in ID order.
var Checks = []Check{
	{FindingBlindSpot, SeverityHigh, "promiscuous port group with the reverse-teaming blind spot"},
	{FindingIPHashMixed, SeverityHigh, "IP hash next to other teaming policies on the same uplinks"},
	{FindingIPHashStandby, SeverityMedium, "IP hash with standby or unused uplinks"},
	{FindingMonitorOneUplink, SeverityMedium, "promiscuous port group on one uplink, monitored VMs on others"},
	{FindingLAGMixed, SeverityMedium, "LAG active together with standalone uplinks"},
}

// Options tune Run.
type Options struct {
	// Datacenter and Cluster limit the audit to the hosts of a datacenter
	// and of a cluster (names; empty: all). An unknown name is an error.
	Datacenter string
	Cluster    string
	// Parallel bounds how many hosts and distributed switches are
	// analysed at once; 0 means GOMAXPROCS.
	Parallel int
}

// Result is what Run found. Hosts, Objects and Findings are sorted (by
// name, by path, by path then ID), so two audits of the same inventory
// are equal.
type Result struct {
	Datacenter, Cluster string // the scope asked for
	Hosts               []string
	// Objects are the switches and port groups checked.
	Objects  []Object
	Findings []Finding
}

// Severities counts the findings by severity.
func (r *Result) Severities() map[string]int {
	m := map[string]int{}
	for _, f := range r.Findings {
		m[f.Severity]++
	}
	return m
}

// Object is one checked switch or port group.
type Object struct {
	// Path is DATACENTER/HOST/VSWITCH[/PORTGROUP] for a standard switch,
	// DATACENTER/DVSWITCH[/DVPORTGROUP] for a distributed one.
	Path string `json:"path"`
	Kind string `json:"kind"`           // Object*
	Host string `json:"host,omitempty"` // standard switches only
}

// Finding is one problem found by a check.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	// Path names the object (see Object.Path).
	Path       string `json:"path"`
	Datacenter string `json:"datacenter"`
	Cluster    string `json:"cluster,omitempty"` // empty for a standalone host or a distributed switch
	Host       string `json:"host,omitempty"`    // empty for a distributed switch
	SwitchType string `json:"switch_type"`       // esxi.SwitchStandard or esxi.SwitchDistributed
	Switch     string `json:"switch"`
	Portgroup  string `json:"portgroup,omitempty"` // empty for a switch-wide finding (RT002)
	// Title says what is wrong on one line; Detail why it matters; Fix
	// what to change, on one line.
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
	// The port group's effective teaming (empty for RT002).
	TeamingPolicy  string   `json:"teaming_policy,omitempty"`
	ActiveUplinks  []string `json:"active_uplinks"`
	StandbyUplinks []string `json:"standby_uplinks"`
	// VMs are the VMs affected: for RT001 and RT004 the promiscuous
	// (monitor) VMs on the port group, sorted by name then NIC.
	VMs []AffectedVM `json:"vms"`
	// Visibility is what those VMs see of other VMs' traffic (the
	// article's table), for RT001 and RT004.
	Visibility []Visibility `json:"visibility,omitempty"`
	// Related lists the paths of the other port groups involved (RT002:
	// the port groups on other policies and on IP hash; RT004: the
	// port groups whose VMs the monitor misses).
	Related []string `json:"related,omitempty"`
}

// AffectedVM is a VM's vNIC on the port group of a finding.
type AffectedVM struct {
	Name string `json:"name"`
	// Ref is the managed object ID, e.g. vm-42 (VirtualMachine:vm-42
	// names it to trace --vm).
	Ref  string `json:"moref"`
	Host string `json:"host"`
	// NIC is the vNIC's label; NICIndex its position among the VM's
	// vNICs, counting from 0 (the order of esxi.Client.Discover's
	// Targets, trace --nic). NICIndex is not in the capturectl.audit/v1
	// JSON.
	NIC        string `json:"nic"`
	NICIndex   int    `json:"-"`
	MAC        string `json:"mac"`
	PowerState string `json:"power_state"`
}

// Visibility is one row of what a promiscuous VM sees.
type Visibility struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Seen is yes, partly or no; Note says when.
	Seen string `json:"seen"`
	Note string `json:"note,omitempty"`
}

// Run reads the inventory through c (a logged-in client, e.g.
// esxi.Client.Vim) once and runs the checks on every standard and
// distributed switch of the hosts in scope.
func Run(ctx context.Context, c *vim25.Client, opts Options) (*Result, error) {
	inv, err := readInventory(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	res, err := inv.audit(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return res, nil
}
