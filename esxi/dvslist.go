package esxi

import (
	"fmt"
	"io"
	"strings"
)

const cmdDVSList = "esxcli network vswitch dvs vmware list"

// DVS is one distributed switch as a member host's "esxcli network
// vswitch dvs vmware list" prints it: the host's proxy switch.
type DVS struct {
	Name string
	// VDSID is the switch's UUID as printed ("50 17 d4 16 3d ac 54
	// 90-c8 d0 0a 7a 4f 3c bd 0e"); UUID is its canonical form, as the
	// vSphere API's DistributedVirtualSwitch.uuid gives it.
	VDSID, UUID string
	// Class is "etherswitch" on 5.x and "cswitch" on later builds.
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
	Extra           map[string]string
}

// DVSPort is one entry of a DVS's "DVPort:" list: a port the host holds.
type DVSPort struct {
	// Client is what uses the port: an uplink (vmnicN), a VM's vNIC, a
	// vmknic; empty for a port not in use.
	Client string
	// PortgroupID is the distributed portgroup's key (dvportgroup-102).
	PortgroupID string
	InUse       bool
	// PortID is the DVPort key (a number as a string, as the API keeps it).
	PortID string
	Extra  map[string]string
}

// dvsPortKeys are the keys of a DVPort entry.
var dvsPortKeys = map[string]bool{"Client": true, "DVPortgroup ID": true, "In Use": true, "Port ID": true}

// ParseDVSList parses the output of "esxcli network vswitch dvs vmware
// list". It does not rely on indentation or blank lines, which pastes
// lose or multiply (a blog's code box strips the indent, notes put a blank
// line after every line): a line that is not "Key: value" starts a switch
// and names it, "DVPort:" opens its port list, and in the list "Client"
// (or a key that repeats) starts the next port. Prompts before the output
// are skipped, the first after it ends it. A host that is in no
// distributed switch prints nothing: no switches, no error.
func ParseDVSList(r io.Reader) ([]DVS, error) {
	lines, err := readLines(cmdDVSList, r)
	if err != nil {
		return nil, err
	}
	var out []DVS
	var sw *DVS
	var port *DVSPort
	inPorts := false
	seen := map[string]bool{} // keys of the current switch or port
	errf := func(line int, format string, a ...any) error {
		return &ParseError{Cmd: cmdDVSList, Line: line, Err: fmt.Errorf(format, a...)}
	}
	for i := skipLeading(lines); i < len(lines); i++ {
		l, n := lines[i], i+1
		if isBlank(l) {
			continue
		}
		if isPrompt(l) {
			break
		}
		t := strings.TrimSpace(l)
		key, value, ok := splitKV(t)
		if !ok {
			// a switch's name line
			out = append(out, DVS{Name: t})
			sw, port, inPorts = &out[len(out)-1], nil, false
			clear(seen)
			continue
		}
		if sw == nil {
			return nil, errf(n, "want the switch's name line before %q", t)
		}
		if inPorts && !dvsPortKeys[key] {
			return nil, errf(n, "%q in the DVPort list: want Client, DVPortgroup ID, In Use or Port ID", t)
		}
		if inPorts {
			if port == nil || key == "Client" || seen[key] {
				sw.Ports = append(sw.Ports, DVSPort{})
				port = &sw.Ports[len(sw.Ports)-1]
				clear(seen)
			}
			seen[key] = true
			f := field{line: n, key: key, value: value}
			switch key {
			case "Client":
				port.Client = value
			case "DVPortgroup ID":
				port.PortgroupID = value
			case "In Use":
				if port.InUse, err = f.bool(); err != nil {
					return nil, &ParseError{Cmd: cmdDVSList, Line: n, Err: err}
				}
			case "Port ID":
				if value == "" {
					return nil, errf(n, "a DVPort without a Port ID")
				}
				port.PortID = value
			}
			continue
		}
		if seen[key] {
			return nil, errf(n, "%q repeats in switch %s", key, sw.Name)
		}
		seen[key] = true
		f := field{line: n, key: key, value: value}
		switch key {
		case "Name":
			if value != sw.Name {
				return nil, errf(n, "switch %q's Name is %q", sw.Name, value)
			}
		case "VDS ID":
			sw.VDSID = value
			if sw.UUID, err = CanonicalUUID(value); err != nil {
				return nil, &ParseError{Cmd: cmdDVSList, Line: n, Err: err}
			}
		case "Class":
			sw.Class = value
		case "Num Ports":
			sw.NumPorts, err = f.int()
		case "Used Ports":
			sw.UsedPorts, err = f.int()
		case "Configured Ports":
			sw.ConfiguredPorts, err = f.int()
		case "MTU":
			sw.MTU, err = f.int()
		case "CDP Status":
			sw.CDPStatus = value
		case "Beacon Timeout":
			sw.BeaconTimeout, err = f.int()
		case "Uplinks":
			sw.Uplinks = splitList(value)
		case "VMware Branded":
			sw.VMwareBranded, err = f.bool()
		case "DVPort":
			if value != "" {
				return nil, errf(n, "DVPort: %q: want the port list on the lines after", value)
			}
			inPorts, port = true, nil
			clear(seen)
		default:
			sw.Extra = addExtra(sw.Extra, key, value)
		}
		if err != nil {
			return nil, &ParseError{Cmd: cmdDVSList, Line: n, Err: err}
		}
	}
	for _, d := range out {
		for _, p := range d.Ports {
			if p.PortID == "" {
				return nil, &ParseError{Cmd: cmdDVSList, Err: fmt.Errorf("switch %s: a DVPort without a Port ID", d.Name)}
			}
		}
	}
	// a host in no distributed switch prints nothing
	return out, nil
}
