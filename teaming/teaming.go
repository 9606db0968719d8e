// Package teaming is the one vocabulary of NIC teaming policies: the short
// names esxcli prints and capturectl's flags and lab topologies take
// (srcport, srcmac, iphash, explicit, loadbased), the vSphere API's names
// (HostNicTeamingPolicy.policy: loadbalance_srcid, ...), the words the
// vSphere Client uses, and whether the reverse-teaming filter applies.
//
// Every package that names a policy uses Policy; none spells the names
// itself.
package teaming

import (
	"fmt"
	"strings"
)

// Policy is a teaming policy by its short name.
type Policy string

// The policies.
const (
	SrcPort   Policy = "srcport"   // route based on originating port ID
	SrcMAC    Policy = "srcmac"    // route based on source MAC hash
	IPHash    Policy = "iphash"    // route based on IP hash (needs a static LAG)
	Explicit  Policy = "explicit"  // use explicit failover order
	LoadBased Policy = "loadbased" // route based on physical NIC load (distributed switches)
)

var policies = []struct {
	p          Policy
	api, words string
}{
	{SrcPort, "loadbalance_srcid", "route based on originating port ID"},
	{SrcMAC, "loadbalance_srcmac", "route based on source MAC hash"},
	{IPHash, "loadbalance_ip", "route based on IP hash"},
	{Explicit, "failover_explicit", "use explicit failover order"},
	{LoadBased, "loadbalance_loadbased", "route based on physical NIC load"},
}

// Policies lists every policy, in the vSphere Client's order.
func Policies() []Policy {
	out := make([]Policy, len(policies))
	for i, p := range policies {
		out[i] = p.p
	}
	return out
}

func (p Policy) index() int {
	for i, q := range policies {
		if q.p == p {
			return i
		}
	}
	return -1
}

// Valid reports whether p is one of the policies.
func (p Policy) Valid() bool { return p.index() >= 0 }

// API is the vSphere API's name (HostNicTeamingPolicy.policy); "" for an
// invalid policy.
func (p Policy) API() string {
	if i := p.index(); i >= 0 {
		return policies[i].api
	}
	return ""
}

// Words say what the policy does, as the vSphere Client words it; an
// invalid policy is returned as it is.
func (p Policy) Words() string {
	if i := p.index(); i >= 0 {
		return policies[i].words
	}
	return string(p)
}

// ReverseFilter reports whether the vSwitch applies the teaming policy to
// frames coming in from the physical network (reverse teaming: a frame
// that arrived on an uplink other than the port's team uplink is dropped
// before the vNIC). vSphere fixes reversePolicy at true for every policy
// without a LAG; for IP hash, which requires a static LAG (the physical
// switch sends one copy), whether the filter runs is not documented, so it
// is not assumed.
func (p Policy) ReverseFilter() bool { return p.Valid() && p != IPHash }

// NeedsLAG reports whether the policy requires a static EtherChannel/LAG
// on the physical switch.
func (p Policy) NeedsLAG() bool { return p == IPHash }

// FromAPI returns the policy the vSphere API names api; ok is false for a
// name it does not know.
func FromAPI(api string) (p Policy, ok bool) {
	for _, q := range policies {
		if q.api == api {
			return q.p, true
		}
	}
	return "", false
}

// Parse reads a policy by its short name or its vSphere API name.
func Parse(s string) (Policy, error) {
	if p := Policy(s); p.Valid() {
		return p, nil
	}
	if p, ok := FromAPI(s); ok {
		return p, nil
	}
	names := make([]string, len(policies))
	for i, q := range policies {
		names[i] = string(q.p)
	}
	return "", fmt.Errorf("teaming policy %q: want %s (or the vSphere API's name, e.g. loadbalance_srcid)", s, strings.Join(names, ", "))
}
