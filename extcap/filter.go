package extcap

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/capturectl/capturectl/pktcap"
)

// FilterOptions maps a capture filter in libpcap's language onto
// pktcap-uw's flow filter options (by pktcap.FilterOptions name: "proto"
// → "6"). pktcap-uw matches a frame when every option given matches, so
// what maps is a conjunction ("and", "&&") of these primitives:
//
//	icmp  tcp  udp              proto
//	ip  ip6  arp                ethtype
//	ip proto N|icmp|tcp|udp     proto
//	ether proto N               ethtype
//	host A   src [host] A   dst [host] A          ip, srcip, dstip (IPv4)
//	src net A/L   dst net A/L                     srcip, dstip
//	ether host M   ether src M   ether dst M      mac, srcmac, dstmac
//	tcp port N   tcp src port N   tcp dst port N  proto 6 and tcpport, srcport, dstport
//	vlan N                                        vlan
//
// Anything else — or, not, parentheses, a bare port (pktcap-uw's port
// options are TCP's), udp ports, net without src or dst, two values for
// one option — is refused with what cannot be mapped: a capture must
// never take in more than the filter asked for. An empty filter is no
// options.
func FilterOptions(expr string) (map[string]string, error) {
	opts := map[string]string{}
	words := strings.Fields(strings.NewReplacer("&&", " and ", "(", " ( ", ")", " ) ", "!", " ! ", "||", " || ").Replace(expr))
	if len(words) == 0 {
		return opts, nil
	}
	set := func(k, v string) error {
		if old, ok := opts[k]; ok && old != v {
			return fmt.Errorf("%s cannot be both %s and %s: pktcap-uw matches one value per option", k, old, v)
		}
		opts[k] = v
		return nil
	}
	refuse := func(format string, a ...any) (map[string]string, error) {
		return nil, fmt.Errorf("capture filter %q cannot be mapped to pktcap-uw's filters: %s", expr, fmt.Sprintf(format, a...))
	}
	protos := map[string]string{"icmp": "1", "tcp": "6", "udp": "17"}
	ethtypes := map[string]string{"ip": "0x0800", "ip6": "0x86dd", "arp": "0x0806"}
	for i := 0; i < len(words); {
		// one primitive, then "and" or the end
		w := strings.ToLower(words[i])
		rest := words[i+1:]
		arg := func(k int) string {
			if k < len(rest) {
				return rest[k]
			}
			return ""
		}
		lower := func(k int) string { return strings.ToLower(arg(k)) }
		var err error
		n := 1 // words used
		switch {
		case w == "or" || w == "||":
			return refuse("'or': pktcap-uw only matches frames that pass every filter (and)")
		case w == "not" || w == "!":
			return refuse("'not': pktcap-uw cannot exclude frames")
		case w == "(" || w == ")":
			return refuse("parentheses: only a list of primitives joined by 'and' maps")
		case w == "tcp" && (lower(0) == "port" || lower(0) == "src" || lower(0) == "dst"):
			key, k := "tcpport", 1
			if lower(0) != "port" {
				if lower(1) != "port" {
					return refuse("want tcp %s port N", lower(0))
				}
				key, k = map[string]string{"src": "srcport", "dst": "dstport"}[lower(0)], 2
			}
			if arg(k) == "" {
				return refuse("tcp port needs a number")
			}
			if err = set("proto", "6"); err == nil {
				err = set(key, arg(k))
			}
			n += k + 1
		case protos[w] != "" && lower(0) == "port":
			return refuse("%s port: pktcap-uw's port filters match TCP ports only", w)
		case protos[w] != "":
			err = set("proto", protos[w])
		case w == "ip" && lower(0) == "proto":
			v := lower(1)
			if p, ok := protos[v]; ok {
				v = p
			}
			if v == "" {
				return refuse("ip proto needs a protocol")
			}
			err = set("proto", v)
			n += 2
		case ethtypes[w] != "" && !(w == "ip" && (lower(0) == "host" || lower(0) == "src" || lower(0) == "dst")):
			err = set("ethtype", ethtypes[w])
		case w == "ether" && lower(0) == "proto":
			if arg(1) == "" {
				return refuse("ether proto needs a number")
			}
			err = set("ethtype", arg(1))
			n += 2
		case w == "ether" && (lower(0) == "host" || lower(0) == "src" || lower(0) == "dst"):
			key := map[string]string{"host": "mac", "src": "srcmac", "dst": "dstmac"}[lower(0)]
			k := 1
			if lower(0) != "host" && lower(1) == "host" {
				k = 2
			}
			if arg(k) == "" {
				return refuse("ether %s needs a MAC address", lower(0))
			}
			err = set(key, arg(k))
			n += k + 1
		case w == "host" || w == "src" || w == "dst" || (w == "ip" && (lower(0) == "host" || lower(0) == "src" || lower(0) == "dst")):
			if w == "ip" { // "ip host A" is "host A"
				i++
				continue
			}
			key := map[string]string{"host": "ip", "src": "srcip", "dst": "dstip"}[w]
			k := 0
			switch {
			case w != "host" && lower(0) == "host":
				k = 1
			case w != "host" && lower(0) == "net":
				k = 1
				if !strings.Contains(arg(1), "/") {
					return refuse("%s net needs ADDR/LEN", w)
				}
			case w != "host" && (lower(0) == "port" || lower(0) == "portrange"):
				return refuse("%s port: write tcp %s port N (pktcap-uw's port filters match TCP only)", w, w)
			}
			a := arg(k)
			if a == "" {
				return refuse("%s needs an address", w)
			}
			if strings.Contains(a, "/") {
				if pr, perr := netip.ParsePrefix(a); key == "ip" || perr != nil || !pr.Addr().Is4() {
					return refuse("%s: pktcap-uw's address filters take one IPv4 address, a prefix only with src or dst", a)
				}
			} else if addr, aerr := netip.ParseAddr(a); aerr != nil {
				return refuse("%s: not an IPv4 address (host names are not resolved)", a)
			} else if !addr.Is4() {
				return refuse("%s: pktcap-uw's address filters are IPv4 only", a)
			}
			err = set(key, a)
			n += k + 1
		case w == "net":
			return refuse("net: write src net or dst net (pktcap-uw's --ip takes no prefix)")
		case w == "vlan":
			if arg(0) == "" || strings.EqualFold(arg(0), "and") {
				return refuse("vlan needs the VLAN ID (pktcap-uw matches one VLAN)")
			}
			err = set("vlan", arg(0))
			n++
		default:
			return refuse("%q is not a filter pktcap-uw can apply", words[i])
		}
		if err != nil {
			return refuse("%v", err)
		}
		i += n
		if i < len(words) {
			if c := strings.ToLower(words[i]); c != "and" {
				if c == "or" || c == "||" || c == "not" || c == "!" {
					continue // reported by the switch above
				}
				return refuse("want 'and' before %q", words[i])
			}
			i++
			if i == len(words) {
				return refuse("nothing after the last 'and'")
			}
		}
	}
	if _, err := pktcap.ParseFilter(opts); err != nil {
		return refuse("%v", err)
	}
	return opts, nil
}
