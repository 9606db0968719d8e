package pktcap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FilterOption is one of pktcap-uw's flow filter options as capturectl's
// commands (capture, trace) and check scenarios take them: by the
// option's name without dashes.
type FilterOption struct {
	Name string // "proto"
	Help string // what it matches, for a flag's usage line
}

var filterOptions = []FilterOption{
	{"proto", "IP protocol, decimal or 0x hex, e.g. 1 or 0x01 (ICMP), 17 (UDP)"},
	{"ethtype", "ethertype, decimal or 0x hex, e.g. 0x0806 (ARP)"},
	{"ip", "IPv4 address, source or destination"},
	{"srcip", "source IPv4 address[/len]"},
	{"dstip", "destination IPv4 address[/len]"},
	{"mac", "MAC address, source or destination"},
	{"srcmac", "source MAC"},
	{"dstmac", "destination MAC"},
	{"tcpport", "TCP port, source or destination"},
	{"srcport", "TCP source port"},
	{"dstport", "TCP destination port"},
	{"vlan", "VLAN ID (0-4095)"},
	{"vxlan", "VXLAN network ID"},
}

// FilterOptions lists the flow filter options ParseFilter takes.
func FilterOptions() []FilterOption { return slices.Clone(filterOptions) }

// ParseFilter reads flow filter options given by name ("proto" → "17").
// Values are read as pktcap-uw reads its options, except the numbers
// pktcap-uw takes in hex (--proto, --ethtype): there a plain number is
// decimal and 0x introduces hex, as a user means it ("17" is UDP, not
// 0x17); the Filter's Args write them in hex for pktcap-uw. An unknown
// name or a bad value is an error that names the option and what it wants.
func ParseFilter(opts map[string]string) (Filter, error) {
	names := make([]string, 0, len(opts))
	for k := range opts {
		if !slices.ContainsFunc(filterOptions, func(o FilterOption) bool { return o.Name == k }) {
			known := make([]string, len(filterOptions))
			for i, o := range filterOptions {
				known[i] = o.Name
			}
			return Filter{}, fmt.Errorf("pktcap: unknown filter %q (want one of %s)", k, strings.Join(known, ", "))
		}
		names = append(names, k)
	}
	slices.Sort(names) // errors in a stable order
	var o Options
	table := specs(&o)
	for _, k := range names {
		v := strings.TrimSpace(opts[k])
		if v == "" {
			return Filter{}, fmt.Errorf("pktcap: option --%s: empty value", k)
		}
		switch k {
		case "proto", "ethtype":
			bits := map[string]int{"proto": 8, "ethtype": 16}[k]
			n, err := strconv.ParseUint(v, 0, bits)
			if err != nil || strings.HasPrefix(v, "0") && len(v) > 1 && v[1] != 'x' && v[1] != 'X' {
				// 0-prefixed octal would surprise: "010" is not 8 to anyone here
				return Filter{}, fmt.Errorf("pktcap: option --%s: bad value %q: want a decimal number or 0x and hex digits (at most %d bits)", k, v, bits)
			}
			if k == "proto" {
				o.Filter.Proto = Some(uint8(n))
			} else {
				o.Filter.EthType = Some(uint16(n))
			}
		default:
			if err := lookup(table, k, false).set(&o, v); err != nil {
				return Filter{}, fmt.Errorf("pktcap: option --%s: bad value %q: %w", k, v, err)
			}
		}
	}
	return o.Filter, o.Filter.Validate()
}
