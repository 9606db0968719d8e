package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/capturectl/capturectl/teaming"
)

// Config is a lab topology: ESXi hosts with their vSwitches and VMs, one
// physical switch, and external stations. It is loaded from YAML with
// LoadConfig; unknown fields are errors.
type Config struct {
	// Name is a label for the topology, shown by `lab serve`.
	Name string `yaml:"name"`
	// Hosts are the emulated ESXi hosts.
	Hosts []HostConfig `yaml:"hosts"`
	// DistributedSwitches are vSphere Distributed Switches across hosts.
	// LoadConfig and ParseConfig give each member host its proxy switch
	// (a VSwitches entry with Distributed set); a Config built in Go must
	// add those itself.
	DistributedSwitches []DVSConfig `yaml:"distributedSwitches"`
	// Switch is the physical switch that connects host uplinks and stations.
	Switch SwitchConfig `yaml:"switch"`
	// Stations are external machines plugged into the physical switch.
	Stations []StationConfig `yaml:"stations"`
	// Traffic runs in the background while the lab is served.
	Traffic []TrafficConfig `yaml:"traffic"`
	// Seed makes the lab's random choices reproducible: which frames a
	// lossy switch port loses, where hosts' drop bursts fall, the
	// management links' jitter (default 1).
	Seed uint64 `yaml:"seed"`
}

// TrafficConfig is background traffic: kind ping (ICMP echo every
// Interval), udp (Rate frames/s of Size bytes) or broadcast (an ARP
// who-has every Interval), from a VM or station to another (name or IP).
type TrafficConfig struct {
	Kind     string        `yaml:"kind"`
	From     string        `yaml:"from"`
	To       string        `yaml:"to"`
	Interval time.Duration `yaml:"interval"`
	Rate     int           `yaml:"rate"`
	Size     int           `yaml:"size"`
}

// HostConfig describes one ESXi host.
type HostConfig struct {
	Name string `yaml:"name"`
	// Version is the ESXi release the host answers as ("5.5", "6.0", "6.5",
	// "6.7", "7.0", "8.0", "9.0"). It selects output details such as the label of the
	// default uplink capture point (EtherswitchDispath before 7.0,
	// UplinkRcvKernel after) and the console text layout.
	Version string `yaml:"version"`
	// Management is the host's management IP address as vCenter reports it.
	Management string `yaml:"management"`
	// SSH configures the host's SSH server.
	SSH SSHConfig `yaml:"ssh"`
	// Lockdown is the host's lockdown mode: "disabled" (the default),
	// "normal" or "strict". In either lockdown mode the host refuses
	// direct logins (SSH) of users not on its exception list — root is
	// not — and the API reports config.lockdownMode.
	Lockdown string `yaml:"lockdown"`
	// ReversePathFwdCheckPromisc models /Net/ReversePathFwdCheckPromisc: when
	// set, a frame received on an uplink whose source MAC belongs to a vNIC of
	// this vSwitch is not delivered to promiscuous ports.
	ReversePathFwdCheckPromisc bool `yaml:"reversePathFwdCheckPromisc"`
	// CaptureBuffer is the number of frames a pktcap-uw session may queue
	// before the host drops captured frames (default 4096).
	CaptureBuffer int `yaml:"captureBuffer"`
	// DropBursts makes every capture on the host drop what it would
	// capture for Length out of every Every (a host busy elsewhere), on
	// top of the drops of a full CaptureBuffer; pktcap-uw counts them in
	// its summary as it counts those.
	DropBursts DropBurstConfig `yaml:"dropBursts"`
	// CaptureStartDelay makes each pktcap-uw on the host take a random
	// time up to it (seeded) to start capturing, before its banner (a
	// busy host; the points of one trace then start apart).
	CaptureStartDelay time.Duration `yaml:"captureStartDelay"`
	// Clock is the host's clock against the lab's (which is capturectl's):
	// pktcap-uw's timestamps, date, ps and file times follow it.
	Clock ClockConfig `yaml:"clock"`
	// ManagementLink is the management network between capturectl and the
	// host's SSH server (a remote site behind a WAN).
	ManagementLink LinkConfig `yaml:"managementLink"`
	// NICs lists physical NICs; those not named here but used as uplinks are
	// created with default properties.
	NICs      []NICConfig     `yaml:"nics"`
	VSwitches []VSwitchConfig `yaml:"vswitches"`
	VMs       []VMConfig      `yaml:"vms"`
}

// ClockConfig is a host clock: host time = lab time + Offset, drifting by
// Drift (parts per million, e.g. 80ppm: 80 µs per second) from when the
// lab starts or the clock is set.
type ClockConfig struct {
	Offset time.Duration `yaml:"offset"`
	Drift  PPM           `yaml:"drift"`
}

// PPM is a rate in parts per million, written 80ppm, -12.5ppm or 80.
type PPM float64

// UnmarshalYAML reads "80ppm" or a number.
func (p *PPM) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "ppm"))
	f, err := strconv.ParseFloat(v, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: drift %q: want parts per million, e.g. 80ppm", n.Line, n.Value)
	}
	*p = PPM(f)
	return nil
}

// LinkConfig is a management link: each direction delays by Latency plus
// up to Jitter (a round trip: twice that), and carries at most Bandwidth.
type LinkConfig struct {
	Latency   time.Duration `yaml:"latency"`
	Jitter    time.Duration `yaml:"jitter"`
	Bandwidth Bandwidth     `yaml:"bandwidth"`
}

// Bandwidth is bytes per second, written as a number of bytes per second
// or with a unit: 2Mbit/s, 512kbit/s, 1Gbit/s, 256KB/s, 1MB/s.
type Bandwidth int64

var bandwidthUnits = []struct {
	suffix string
	mult   float64
}{{"Gbit/s", 1e9 / 8}, {"Mbit/s", 1e6 / 8}, {"kbit/s", 1e3 / 8}, {"MB/s", 1 << 20}, {"KB/s", 1 << 10}, {"B/s", 1}}

// UnmarshalYAML reads a bandwidth.
func (b *Bandwidth) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	mult := 1.0
	for _, u := range bandwidthUnits {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if n.Kind != yaml.ScalarNode || err != nil || f < 0 {
		return fmt.Errorf("line %d: bandwidth %q: want bytes per second or a rate such as 2Mbit/s or 256KB/s", n.Line, n.Value)
	}
	*b = Bandwidth(f * mult)
	return nil
}

// DropBurstConfig is a host's periodic capture drops.
type DropBurstConfig struct {
	Every  time.Duration `yaml:"every"`
	Length time.Duration `yaml:"length"`
}

// SSHConfig configures an emulated host's SSH server.
type SSHConfig struct {
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int `yaml:"port"`
	// User is the login name (default root).
	User string `yaml:"user"`
	// Password for keyboard-interactive login; empty means the lab's
	// generated password (printed by `lab serve`).
	Password string `yaml:"password"`
	// Service is the host's SSH service (TSM-SSH) at start: "running"
	// (the default) or "stopped" (ESXi's default after installation: the
	// port refuses connections until the service is started, through the
	// API's HostServiceSystem or the vSphere Client).
	Service string `yaml:"service"`
}

// NICConfig describes a physical NIC (vmnicN).
type NICConfig struct {
	Name   string `yaml:"name"`
	MAC    string `yaml:"mac"`
	Driver string `yaml:"driver"`
	Speed  int    `yaml:"speed"`
	// Down marks the link as down at start.
	Down bool `yaml:"down"`
}

// VSwitchConfig describes a standard vSwitch.
type VSwitchConfig struct {
	Name    string   `yaml:"name"`
	Uplinks []string `yaml:"uplinks"`
	MTU     int      `yaml:"mtu"`
	// Promiscuous is the vSwitch security policy default.
	Promiscuous bool `yaml:"promiscuous"`
	// Teaming is the vSwitch teaming policy; portgroups may override it.
	Teaming    TeamingConfig     `yaml:"teaming"`
	Portgroups []PortgroupConfig `yaml:"portgroups"`
	// Distributed is set on the proxy switch of a distributed switch on a
	// member host (made from DistributedSwitches; not in YAML).
	Distributed *DVSMember `yaml:"-"`
}

// DVSConfig describes a vSphere Distributed Switch. vCenter holds its
// configuration; every member host runs a proxy switch (net-stats shows
// DvsPortset-N) whose uplinks are the host's vmnics behind the switch's
// uplink names. Teaming orders name uplinks ("Uplink 1"), not vmnics, and
// reverse teaming applies on each host as on a standard vSwitch.
type DVSConfig struct {
	Name string `yaml:"name"`
	// Uplinks are the switch's uplink names (default "Uplink 1" to
	// "Uplink N", N the most NICs a member gives).
	Uplinks     []string          `yaml:"uplinks"`
	MTU         int               `yaml:"mtu"`
	Promiscuous bool              `yaml:"promiscuous"`
	Teaming     TeamingConfig     `yaml:"teaming"`
	Portgroups  []PortgroupConfig `yaml:"portgroups"`
	// Hosts are the member hosts; NICs[i] backs Uplinks[i].
	Hosts []DVSHostConfig `yaml:"hosts"`
}

// DVSHostConfig is a member host of a distributed switch.
type DVSHostConfig struct {
	Host string   `yaml:"host"`
	NICs []string `yaml:"nics"`
}

// DVSMember ties a host's proxy switch to its distributed switch.
type DVSMember struct {
	Switch *DVSConfig
	// Portset is the proxy switch's index among the host's distributed
	// switches (net-stats: DvsPortset-N).
	Portset int
	// UplinkOf maps the host's vmnics to the switch's uplink names.
	UplinkOf map[string]string
}

// TeamingConfig is a NIC teaming policy. Policy is one of srcport
// (route based on originating port ID), srcmac, iphash, explicit (failover
// order) or loadbased; Active and Standby give the uplink order. Empty
// fields inherit from the vSwitch.
type TeamingConfig struct {
	Policy         teaming.Policy `yaml:"policy"`
	Active         []string       `yaml:"active"`
	Standby        []string       `yaml:"standby"`
	NotifySwitches *bool          `yaml:"notifySwitches"`
}

// PortgroupConfig describes a standard portgroup.
type PortgroupConfig struct {
	Name string `yaml:"name"`
	VLAN int    `yaml:"vlan"`
	// Promiscuous overrides the vSwitch security policy when set.
	Promiscuous *bool         `yaml:"promiscuous"`
	Teaming     TeamingConfig `yaml:"teaming"`
}

// VMConfig describes a virtual machine.
type VMConfig struct {
	Name string `yaml:"name"`
	// UUID is the BIOS UUID (config.uuid); generated from the name if empty.
	UUID string `yaml:"uuid"`
	// PoweredOff VMs have no world and no ports.
	PoweredOff bool          `yaml:"poweredOff"`
	NICs       []VMNICConfig `yaml:"nics"`
}

// VMNICConfig describes one vNIC of a VM.
type VMNICConfig struct {
	Portgroup string `yaml:"portgroup"`
	MAC       string `yaml:"mac"`
	// IP is the guest address with prefix length, e.g. 192.168.100.11/24.
	IP string `yaml:"ip"`
	// PortID pins the vSwitch port ID (e.g. 50331657); assigned if zero.
	PortID uint32 `yaml:"portID"`
	// TeamUplink pins the port's team uplink; derived from the policy if empty.
	TeamUplink string `yaml:"teamUplink"`
	// DVFilters are the dvfilters attached to the vNIC (NSX's distributed
	// firewall names them like nic-2099871-eth0-vmware-sfw.2): esxcli lists
	// them as the port's Active Filters and pktcap-uw --dvfilter captures
	// there, where the vNIC sends and receives (the lab's filters pass
	// every frame).
	DVFilters []string `yaml:"dvfilters"`
}

// SwitchConfig describes the physical switch.
type SwitchConfig struct {
	Name    string             `yaml:"name"`
	Ports   []SwitchPortConfig `yaml:"ports"`
	LAGs    []LAGConfig        `yaml:"lags"`
	Mirrors []MirrorConfig     `yaml:"mirrors"`
	// StaticMACs pins MAC table entries (they are not relearned).
	StaticMACs []StaticMACConfig `yaml:"staticMACs"`
}

// SwitchPortConfig describes one physical switch port. Connect names what
// is plugged in: "HOST/vmnicN" for a host uplink or "station:NAME".
type SwitchPortConfig struct {
	Name    string `yaml:"name"`
	Connect string `yaml:"connect"`
	// Access makes the port an access port in this VLAN; otherwise it is a
	// trunk carrying VLANs (all when empty) with Native untagged.
	Access int   `yaml:"access"`
	VLANs  []int `yaml:"vlans"`
	Native int   `yaml:"native"`
	// Loss is the fraction of the frames the port sends that are lost on
	// its wire (0 to 1; which ones follows Config.Seed).
	Loss float64 `yaml:"loss"`
}

// LAGConfig is a static link aggregation (EtherChannel "mode on").
type LAGConfig struct {
	Name  string   `yaml:"name"`
	Ports []string `yaml:"ports"`
}

// MirrorConfig is a port mirroring (SPAN) session. Direction is rx, tx or
// both, seen from the source port. The destination port carries only
// mirrored traffic.
type MirrorConfig struct {
	Name        string   `yaml:"name"`
	Sources     []string `yaml:"sources"`
	Direction   string   `yaml:"direction"`
	Destination string   `yaml:"destination"`
}

// StaticMACConfig pins a MAC address in a VLAN to a port.
type StaticMACConfig struct {
	MAC  string `yaml:"mac"`
	VLAN int    `yaml:"vlan"`
	Port string `yaml:"port"`
}

// StationConfig is an external machine on the physical network.
type StationConfig struct {
	Name string `yaml:"name"`
	MAC  string `yaml:"mac"`
	IP   string `yaml:"ip"`
	// VLAN tags the station's frames (0: untagged, i.e. it sits on an access
	// port or the native VLAN).
	VLAN int `yaml:"vlan"`
}

// ConfigError is a topology error with the file position it refers to.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadConfig reads and validates a topology file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab: read topology: %w", err)
	}
	return ParseConfig(data, path)
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// ParseConfig decodes and validates a topology; name is used in errors.
// Decoding is strict: unknown fields and type mismatches are errors that
// name file and line.
func ParseConfig(data []byte, name string) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ConfigError{File: name, Msg: "empty topology"}
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			var errs []error
			for _, e := range te.Errors {
				errs = append(errs, yamlErr(name, e))
			}
			return nil, errors.Join(errs...)
		}
		return nil, yamlErr(name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErr(name, err.Error())
	}
	lines := map[string]int{}
	indexLines(&root, "", lines)
	v := validator{file: name, lines: lines}
	v.config(&cfg)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &cfg, nil
}

func yamlErr(file, msg string) error {
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{File: file, Line: line, Msg: m[2]}
	}
	return &ConfigError{File: file, Msg: msg}
}

// indexLines records the line of every mapping key and sequence item under
// a dotted path such as "hosts.0.vswitches.1.uplinks".
func indexLines(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexLines(c, path, out)
		}
	case yaml.MappingNode:
		if _, ok := out[path]; !ok {
			out[path] = n.Line
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			out[p] = n.Content[i].Line
			indexLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		if _, ok := out[path]; !ok {
			out[path] = n.Line
		}
		for i, c := range n.Content {
			p := join(path, strconv.Itoa(i))
			out[p] = c.Line
			indexLines(c, p, out)
		}
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

type validator struct {
	file  string
	lines map[string]int
	errs  []error
}

func (v *validator) errf(path, format string, args ...any) {
	line := 0
	for p := path; ; {
		if l, ok := v.lines[p]; ok {
			line = l
			break
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	v.errs = append(v.errs, &ConfigError{File: v.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

var (
	hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)
	vmnicRE    = regexp.MustCompile(`^vmnic[0-9]+$`)
	objNameRE  = regexp.MustCompile(`^[^\x00-\x1f/\\]{1,80}$`)
	dvfilterRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,80}$`)
)

var esxiVersions = map[string]bool{"5.5": true, "6.0": true, "6.5": true, "6.7": true, "7.0": true, "8.0": true, "9.0": true}

func (v *validator) config(c *Config) {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if len(c.Hosts) == 0 {
		v.errf("hosts", "topology has no hosts")
	}
	v.distributed(c)
	hostNames := map[string]bool{}
	macs := map[string]string{}
	uplinkOf := map[string]bool{} // "host/vmnicN"
	stations := map[string]bool{}
	addMAC := func(path, mac, owner string) {
		hw, err := net.ParseMAC(mac)
		if err != nil || len(hw) != 6 {
			v.errf(path, "invalid MAC address %q (want xx:xx:xx:xx:xx:xx)", mac)
			return
		}
		k := hw.String()
		if prev, dup := macs[k]; dup {
			v.errf(path, "MAC %s is used by both %s and %s", k, prev, owner)
		}
		macs[k] = owner
	}
	for hi := range c.Hosts {
		h := &c.Hosts[hi]
		hp := "hosts." + strconv.Itoa(hi)
		if !hostNameRE.MatchString(h.Name) {
			v.errf(hp+".name", "invalid host name %q", h.Name)
		}
		if hostNames[h.Name] {
			v.errf(hp+".name", "duplicate host name %q", h.Name)
		}
		hostNames[h.Name] = true
		if h.Version == "" {
			h.Version = "6.7"
		}
		if !esxiVersions[h.Version] {
			v.errf(hp+".version", "unknown ESXi version %q (want one of 5.5, 6.0, 6.5, 6.7, 7.0, 8.0, 9.0)", h.Version)
		}
		if h.Management != "" {
			if _, err := netip.ParseAddr(h.Management); err != nil {
				v.errf(hp+".management", "invalid management address %q", h.Management)
			}
		}
		if h.SSH.Port < 0 || h.SSH.Port > 65535 {
			v.errf(hp+".ssh.port", "invalid port %d", h.SSH.Port)
		}
		if h.SSH.User == "" {
			h.SSH.User = "root"
		}
		switch h.SSH.Service {
		case "":
			h.SSH.Service = "running"
		case "running", "stopped":
		default:
			v.errf(hp+".ssh.service", "unknown SSH service state %q (want running or stopped)", h.SSH.Service)
		}
		switch h.Lockdown {
		case "":
			h.Lockdown = "disabled"
		case "disabled", "normal", "strict":
		default:
			v.errf(hp+".lockdown", "unknown lockdown mode %q (want disabled, normal or strict)", h.Lockdown)
		}
		if h.CaptureBuffer == 0 {
			h.CaptureBuffer = 4096
		}
		if h.CaptureBuffer < 1 {
			v.errf(hp+".captureBuffer", "captureBuffer must be positive")
		}
		v.knobs(hp, h)
		nics := map[string]bool{}
		for ni, n := range h.NICs {
			np := hp + ".nics." + strconv.Itoa(ni)
			if !vmnicRE.MatchString(n.Name) {
				v.errf(np+".name", "invalid NIC name %q (want vmnicN)", n.Name)
			}
			if nics[n.Name] {
				v.errf(np+".name", "duplicate NIC %q", n.Name)
			}
			nics[n.Name] = true
			if n.MAC != "" {
				addMAC(np+".mac", n.MAC, h.Name+"/"+n.Name)
			}
		}
		portgroups := map[string]int{} // name -> vswitch index
		for si := range h.VSwitches {
			s := &h.VSwitches[si]
			sp := hp + ".vswitches." + strconv.Itoa(si)
			if !objNameRE.MatchString(s.Name) {
				v.errf(sp+".name", "invalid vSwitch name %q", s.Name)
			}
			if s.MTU == 0 {
				s.MTU = 1500
			}
			if s.Teaming.Policy == "" {
				s.Teaming.Policy = teaming.SrcPort
			}
			for ui, u := range s.Uplinks {
				if !vmnicRE.MatchString(u) {
					v.errf(sp+".uplinks."+strconv.Itoa(ui), "invalid uplink name %q (want vmnicN)", u)
				}
				if uplinkOf[h.Name+"/"+u] {
					v.errf(sp+".uplinks."+strconv.Itoa(ui), "uplink %s is already used by another vSwitch", u)
				}
				uplinkOf[h.Name+"/"+u] = true
			}
			if len(s.Teaming.Active) == 0 && len(s.Teaming.Standby) == 0 {
				s.Teaming.Active = append([]string(nil), s.Uplinks...)
			}
			v.teaming(sp+".teaming", s.Teaming, s.Uplinks, true)
			for pi := range s.Portgroups {
				pg := &s.Portgroups[pi]
				pp := sp + ".portgroups." + strconv.Itoa(pi)
				if !objNameRE.MatchString(pg.Name) {
					v.errf(pp+".name", "invalid portgroup name %q", pg.Name)
				}
				if _, dup := portgroups[pg.Name]; dup {
					v.errf(pp+".name", "duplicate portgroup %q on host %s", pg.Name, h.Name)
				}
				portgroups[pg.Name] = si
				if pg.VLAN < 0 || pg.VLAN > 4095 {
					v.errf(pp+".vlan", "VLAN %d out of range 0-4095", pg.VLAN)
				}
				v.teaming(pp+".teaming", pg.Teaming, s.Uplinks, false)
			}
		}
		vmNames, dvfilters := map[string]bool{}, map[string]bool{}
		for vi := range h.VMs {
			vm := &h.VMs[vi]
			vp := hp + ".vms." + strconv.Itoa(vi)
			if !objNameRE.MatchString(vm.Name) {
				v.errf(vp+".name", "invalid VM name %q", vm.Name)
			}
			if vmNames[vm.Name] {
				v.errf(vp+".name", "duplicate VM %q on host %s", vm.Name, h.Name)
			}
			vmNames[vm.Name] = true
			for ni := range vm.NICs {
				n := &vm.NICs[ni]
				np := vp + ".nics." + strconv.Itoa(ni)
				si, ok := portgroups[n.Portgroup]
				if !ok {
					v.errf(np+".portgroup", "VM %s: unknown portgroup %q on host %s", vm.Name, n.Portgroup, h.Name)
				}
				addMAC(np+".mac", n.MAC, vm.Name)
				if n.IP != "" {
					if _, err := netip.ParsePrefix(n.IP); err != nil {
						v.errf(np+".ip", "invalid IP %q (want address/prefix, e.g. 192.168.100.11/24)", n.IP)
					}
				}
				for fi, f := range n.DVFilters {
					if !dvfilterRE.MatchString(f) || dvfilters[f] {
						v.errf(np+".dvfilters."+strconv.Itoa(fi), "invalid or duplicate dvfilter name %q on host %s (letters, digits and _.:-)", f, h.Name)
					}
					dvfilters[f] = true
				}
				if n.TeamUplink != "" && ok && !contains(h.VSwitches[si].Uplinks, n.TeamUplink) {
					v.errf(np+".teamUplink", "team uplink %s is not an uplink of vSwitch %s", n.TeamUplink, h.VSwitches[si].Name)
				}
			}
		}
	}
	for si, s := range c.Stations {
		sp := "stations." + strconv.Itoa(si)
		if !objNameRE.MatchString(s.Name) || stations[s.Name] {
			v.errf(sp+".name", "invalid or duplicate station name %q", s.Name)
		}
		stations[s.Name] = true
		addMAC(sp+".mac", s.MAC, s.Name)
		if _, err := netip.ParsePrefix(s.IP); err != nil {
			v.errf(sp+".ip", "invalid IP %q (want address/prefix)", s.IP)
		}
		if s.VLAN < 0 || s.VLAN > 4094 {
			v.errf(sp+".vlan", "VLAN %d out of range", s.VLAN)
		}
	}
	v.physical(&c.Switch, uplinkOf, stations)
	vms := map[string]bool{}
	for _, h := range c.Hosts {
		for _, vm := range h.VMs {
			vms[vm.Name] = true
		}
	}
	for ti := range c.Traffic {
		v.traffic("traffic."+strconv.Itoa(ti), &c.Traffic[ti], vms, stations)
	}
}

// MaxDrift is the largest clock drift a topology takes (ppm): beyond it a
// host's clock is broken, not drifting.
const MaxDrift = 1000

// knobs checks a host's adversity knobs: clock, management link, drop
// bursts.
func (v *validator) knobs(hp string, h *HostConfig) {
	if d := float64(h.Clock.Drift); d > MaxDrift || d < -MaxDrift {
		v.errf(hp+".clock.drift", "drift %vppm: want at most %dppm either way", d, MaxDrift)
	}
	if err := h.ManagementLink.Validate(); err != nil {
		v.errf(hp+".managementLink", "%v", err)
	}
	if err := h.DropBursts.Validate(); err != nil {
		v.errf(hp+".dropBursts", "%v", err)
	}
	if h.CaptureStartDelay < 0 || h.CaptureStartDelay > time.Minute {
		v.errf(hp+".captureStartDelay", "captureStartDelay %v: want 0 to 1m", h.CaptureStartDelay)
	}
}

// Validate checks a management link.
func (l LinkConfig) Validate() error {
	switch {
	case l.Latency < 0 || l.Latency > 10*time.Second:
		return fmt.Errorf("latency %v: want 0 to 10s (one way)", l.Latency)
	case l.Jitter < 0 || l.Jitter > 10*time.Second:
		return fmt.Errorf("jitter %v: want 0 to 10s", l.Jitter)
	case l.Bandwidth != 0 && l.Bandwidth < 1000:
		return fmt.Errorf("bandwidth %d bytes/s: want at least 1000 (or none for unlimited)", l.Bandwidth)
	}
	return nil
}

// Validate checks drop bursts: none, or a positive length shorter than
// the period.
func (d DropBurstConfig) Validate() error {
	switch {
	case d == DropBurstConfig{}:
		return nil
	case d.Every <= 0 || d.Length <= 0:
		return fmt.Errorf("drop bursts need both every and length, positive (got every %v, length %v)", d.Every, d.Length)
	case d.Length >= d.Every:
		return fmt.Errorf("drop bursts of %v every %v would drop everything", d.Length, d.Every)
	}
	return nil
}

// ValidateTraffic checks traffic meant for the topology c (a check
// scenario's), filling in defaults as a topology's traffic gets them;
// errors name the field as path.N.FIELD in file.
func (c *Config) ValidateTraffic(file, path string, ts []TrafficConfig) error {
	v := &validator{file: file}
	vms, stations := map[string]bool{}, map[string]bool{}
	for _, h := range c.Hosts {
		for _, vm := range h.VMs {
			vms[vm.Name] = true
		}
	}
	for _, s := range c.Stations {
		stations[s.Name] = true
	}
	for i := range ts {
		v.traffic(path+"."+strconv.Itoa(i), &ts[i], vms, stations)
	}
	return errors.Join(v.errs...)
}

// traffic checks one traffic entry: a kind that sends something, known
// endpoints, and what the kind needs (a rate for udp, the address asked
// for by a broadcast ARP request).
func (v *validator) traffic(tp string, t *TrafficConfig, vms, stations map[string]bool) {
	switch t.Kind {
	case "ping", "broadcast":
		if t.Interval == 0 {
			t.Interval = time.Second
		}
		if t.Rate != 0 {
			v.errf(tp+".rate", "%s traffic has no rate (it sends one frame every interval); rate is for udp", t.Kind)
		}
		if t.Size != 0 {
			v.errf(tp+".size", "%s traffic has a fixed frame size; size is for udp", t.Kind)
		}
	case "udp":
		if t.Rate <= 0 {
			v.errf(tp+".rate", "udp traffic needs a positive rate (frames/s)")
		}
		if t.Interval != 0 {
			v.errf(tp+".interval", "udp traffic is paced by rate; interval is for ping and broadcast")
		}
		if t.Size == 0 {
			t.Size = 128
		}
		if t.Size < 60 || t.Size > 9018 {
			v.errf(tp+".size", "size %d: want a frame of 60 to 9018 bytes", t.Size)
		}
	default:
		v.errf(tp+".kind", "unknown traffic kind %q (want ping, udp or broadcast)", t.Kind)
	}
	if t.Interval < 0 {
		v.errf(tp+".interval", "negative interval")
	}
	if !vms[t.From] && !stations[t.From] {
		v.errf(tp+".from", "unknown VM or station %q", t.From)
	}
	switch {
	case t.To == "" && t.Kind == "broadcast":
		v.errf(tp+".to", "a broadcast (an ARP request) needs to: the VM, station or IP address it asks for")
	case !vms[t.To] && !stations[t.To]:
		if _, err := netip.ParseAddr(t.To); err != nil {
			v.errf(tp+".to", "unknown VM or station %q (want a name or an IP address)", t.To)
		}
	}
}

// distributed checks the distributed switches and gives each member host
// a proxy switch: a vSwitch with its vmnics as uplinks and the teaming
// orders in vmnics, checked further with the host's own vSwitches.
func (v *validator) distributed(c *Config) {
	hostIndex := map[string]int{}
	for i, h := range c.Hosts {
		hostIndex[h.Name] = i
	}
	names := map[string]bool{}
	portsets := map[string]int{}
	for di := range c.DistributedSwitches {
		d := &c.DistributedSwitches[di]
		dp := "distributedSwitches." + strconv.Itoa(di)
		if !objNameRE.MatchString(d.Name) || names[d.Name] {
			v.errf(dp+".name", "invalid or duplicate distributed switch name %q", d.Name)
		}
		names[d.Name] = true
		if d.MTU == 0 {
			d.MTU = 1500
		}
		if d.Teaming.Policy == "" {
			d.Teaming.Policy = teaming.SrcPort
		}
		if len(d.Uplinks) == 0 {
			n := 0
			for _, m := range d.Hosts {
				n = max(n, len(m.NICs))
			}
			for i := range n {
				d.Uplinks = append(d.Uplinks, fmt.Sprintf("Uplink %d", i+1))
			}
		}
		if len(d.Teaming.Active) == 0 && len(d.Teaming.Standby) == 0 {
			d.Teaming.Active = append([]string(nil), d.Uplinks...)
		}
		v.teaming(dp+".teaming", d.Teaming, d.Uplinks, true)
		pgs := map[string]bool{}
		for pi, pg := range d.Portgroups {
			pp := dp + ".portgroups." + strconv.Itoa(pi)
			if !objNameRE.MatchString(pg.Name) || pgs[pg.Name] {
				v.errf(pp+".name", "invalid or duplicate portgroup name %q", pg.Name)
			}
			pgs[pg.Name] = true
			if pg.VLAN < 0 || pg.VLAN > 4095 {
				v.errf(pp+".vlan", "VLAN %d out of range 0-4095", pg.VLAN)
			}
			v.teaming(pp+".teaming", pg.Teaming, d.Uplinks, false)
		}
		members := map[string]bool{}
		for mi, m := range d.Hosts {
			mp := dp + ".hosts." + strconv.Itoa(mi)
			hi, ok := hostIndex[m.Host]
			if !ok || members[m.Host] {
				v.errf(mp+".host", "unknown or repeated member host %q", m.Host)
				continue
			}
			members[m.Host] = true
			if len(m.NICs) > len(d.Uplinks) {
				v.errf(mp+".nics", "%d NICs for %d uplinks (%s)", len(m.NICs), len(d.Uplinks), strings.Join(d.Uplinks, ", "))
				continue
			}
			member := &DVSMember{Switch: d, Portset: portsets[m.Host], UplinkOf: map[string]string{}}
			portsets[m.Host]++
			nicOf := map[string]string{}
			for i, nic := range m.NICs {
				member.UplinkOf[nic] = d.Uplinks[i]
				nicOf[d.Uplinks[i]] = nic
			}
			vs := VSwitchConfig{Name: d.Name, Uplinks: append([]string(nil), m.NICs...), MTU: d.MTU, Promiscuous: d.Promiscuous,
				Teaming: dvsTeaming(d.Teaming, nicOf), Distributed: member}
			for _, pg := range d.Portgroups {
				pg.Teaming = dvsTeaming(pg.Teaming, nicOf)
				vs.Portgroups = append(vs.Portgroups, pg)
			}
			h := &c.Hosts[hi]
			h.VSwitches = append(h.VSwitches, vs)
		}
	}
}

// dvsTeaming translates a teaming order in uplink names into the host's
// vmnics; an uplink with no vmnic on the host is left out.
func dvsTeaming(t TeamingConfig, nicOf map[string]string) TeamingConfig {
	out := t
	out.Active, out.Standby = nil, nil
	for _, u := range t.Active {
		if n := nicOf[u]; n != "" {
			out.Active = append(out.Active, n)
		}
	}
	for _, u := range t.Standby {
		if n := nicOf[u]; n != "" {
			out.Standby = append(out.Standby, n)
		}
	}
	return out
}

// policyNames lists the teaming policies a topology takes.
func policyNames() string {
	var names []string
	for _, p := range teaming.Policies() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

func (v *validator) teaming(path string, t TeamingConfig, uplinks []string, top bool) {
	if t.Policy != "" && !t.Policy.Valid() {
		v.errf(path+".policy", "unknown teaming policy %q (want %s)", t.Policy, policyNames())
	}
	seen := map[string]bool{}
	for i, u := range append(append([]string(nil), t.Active...), t.Standby...) {
		if !contains(uplinks, u) {
			v.errf(path, "%s is not an uplink of the switch (%s)", u, strings.Join(uplinks, ", "))
		}
		if seen[u] {
			v.errf(path, "%s is listed twice", u)
		}
		seen[u] = true
		_ = i
	}
	if top && len(uplinks) > 0 && len(t.Active) == 0 {
		v.errf(path+".active", "no active uplinks")
	}
}

func (v *validator) physical(s *SwitchConfig, uplinks, stations map[string]bool) {
	if s.Name == "" {
		s.Name = "pswitch"
	}
	ports := map[string]bool{}
	connected := map[string]bool{}
	for pi, p := range s.Ports {
		pp := "switch.ports." + strconv.Itoa(pi)
		if p.Name == "" || ports[p.Name] {
			v.errf(pp+".name", "invalid or duplicate switch port name %q", p.Name)
		}
		ports[p.Name] = true
		switch {
		case strings.HasPrefix(p.Connect, "station:"):
			if !stations[strings.TrimPrefix(p.Connect, "station:")] {
				v.errf(pp+".connect", "unknown station in %q", p.Connect)
			}
		case p.Connect == "":
			// an empty port, e.g. a mirror destination with an analyzer
		default:
			if !uplinks[p.Connect] {
				v.errf(pp+".connect", "%q is not a host uplink (want HOST/vmnicN of a vSwitch uplink, or station:NAME)", p.Connect)
			}
		}
		if p.Connect != "" {
			if connected[p.Connect] {
				v.errf(pp+".connect", "%s is connected twice", p.Connect)
			}
			connected[p.Connect] = true
		}
		if p.Loss < 0 || p.Loss > 1 {
			v.errf(pp+".loss", "loss %v: want a fraction from 0 to 1", p.Loss)
		}
		if p.Loss > 0 && p.Connect == "" {
			v.errf(pp+".loss", "loss on a port with nothing connected would lose nothing")
		}
		if p.Access < 0 || p.Access > 4094 || p.Native < 0 || p.Native > 4094 {
			v.errf(pp, "VLAN out of range")
		}
		for _, vl := range p.VLANs {
			if vl < 1 || vl > 4094 {
				v.errf(pp+".vlans", "VLAN %d out of range 1-4094", vl)
			}
		}
	}
	inLAG := map[string]bool{}
	for li, l := range s.LAGs {
		lp := "switch.lags." + strconv.Itoa(li)
		if len(l.Ports) < 2 {
			v.errf(lp+".ports", "a LAG needs at least two ports")
		}
		for _, p := range l.Ports {
			if !ports[p] {
				v.errf(lp+".ports", "unknown port %q", p)
			}
			if inLAG[p] {
				v.errf(lp+".ports", "port %q is in two LAGs", p)
			}
			inLAG[p] = true
		}
	}
	for mi := range s.Mirrors {
		m := &s.Mirrors[mi]
		mp := "switch.mirrors." + strconv.Itoa(mi)
		if m.Direction == "" {
			m.Direction = "both"
		}
		if m.Direction != "rx" && m.Direction != "tx" && m.Direction != "both" {
			v.errf(mp+".direction", "unknown mirror direction %q (want rx, tx or both)", m.Direction)
		}
		if !ports[m.Destination] {
			v.errf(mp+".destination", "unknown port %q", m.Destination)
		}
		if len(m.Sources) == 0 {
			v.errf(mp+".sources", "a mirror needs a source port")
		}
		for _, p := range m.Sources {
			if !ports[p] {
				v.errf(mp+".sources", "unknown port %q", p)
			}
			if p == m.Destination {
				v.errf(mp+".sources", "port %q is both source and destination", p)
			}
		}
	}
	for i, sm := range s.StaticMACs {
		sp := "switch.staticMACs." + strconv.Itoa(i)
		if _, err := net.ParseMAC(sm.MAC); err != nil {
			v.errf(sp+".mac", "invalid MAC %q", sm.MAC)
		}
		if !ports[sm.Port] {
			v.errf(sp+".port", "unknown port %q", sm.Port)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
