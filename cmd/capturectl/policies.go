package main

// apiPolicies maps vSphere teaming policy names to correlate's (analyze
// --target).
var apiPolicies = map[string]string{
	"loadbalance_srcid": "srcport", "loadbalance_srcmac": "srcmac", "loadbalance_ip": "iphash",
	"loadbalance_loadbased": "loadbased", "failover_explicit": "explicit",
}
