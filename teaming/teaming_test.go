package teaming

import (
	"strings"
	"testing"
)

func TestPolicies(t *testing.T) {
	for _, c := range []struct {
		p            Policy
		api, words   string
		reverse, lag bool
	}{
		{SrcPort, "loadbalance_srcid", "route based on originating port ID", true, false},
		{SrcMAC, "loadbalance_srcmac", "route based on source MAC hash", true, false},
		{IPHash, "loadbalance_ip", "route based on IP hash", false, true},
		{Explicit, "failover_explicit", "use explicit failover order", true, false},
		{LoadBased, "loadbalance_loadbased", "route based on physical NIC load", true, false},
	} {
		if c.p.API() != c.api || c.p.Words() != c.words || c.p.ReverseFilter() != c.reverse || c.p.NeedsLAG() != c.lag {
			t.Errorf("%s: API %q, words %q, reverse %v, LAG %v; want %q, %q, %v, %v", c.p, c.p.API(), c.p.Words(), c.p.ReverseFilter(), c.p.NeedsLAG(), c.api, c.words, c.reverse, c.lag)
		}
		if p, ok := FromAPI(c.api); !ok || p != c.p {
			t.Errorf("FromAPI(%q) = %q, %v", c.api, p, ok)
		}
		for _, s := range []string{string(c.p), c.api} {
			if p, err := Parse(s); err != nil || p != c.p {
				t.Errorf("Parse(%q) = %q, %v", s, p, err)
			}
		}
	}
	if len(Policies()) != 5 {
		t.Errorf("Policies() = %v", Policies())
	}
	bad := Policy("roundrobin")
	if bad.Valid() || bad.API() != "" || bad.ReverseFilter() || bad.Words() != "roundrobin" {
		t.Errorf("an unknown policy: valid %v, API %q, reverse %v, words %q", bad.Valid(), bad.API(), bad.ReverseFilter(), bad.Words())
	}
	if _, err := Parse("roundrobin"); err == nil || !strings.Contains(err.Error(), "srcport, srcmac, iphash, explicit, loadbased") {
		t.Errorf("Parse(roundrobin): %v", err)
	}
}
