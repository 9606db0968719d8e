package scenario

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/lab"
)

// Every error is in the file and says what is wrong; none names a Go type.
func TestParseErrors(t *testing.T) {
	for body, want := range map[string]string{
		"vm: a\nbogus: 1\nexpect: [{counts: {delivered: 1}}]\n": "field bogus not found",
		"vm: a\nexpect: [{counts: {deliverd: 1}}]\n":            `unknown verdict "deliverd"`,
		"vm: a\n":                                                               "no expectations",
		"expect: [{counts: {delivered: 1}}]\n":                                  "vm is required",
		"vm: a\nexpect: [{counts: {delivered: x}}]\n":                           "want a count or {min: N, max: M}",
		"vm: a\nexpect: [{counts: {delivered: {min: 3, max: 1}}}]\n":            "want 0 <= min <= max",
		"vm: a\nexpect: [{flow: x}]\n":                                          "expect[0]: no counts",
		"vm: a\nfilters: {prot: '1'}\nexpect: [{counts: {delivered: 1}}]\n":     `unknown filter "prot"`,
		"vm: a\nfilters: {vlan: '99999'}\nexpect: [{counts: {delivered: 1}}]\n": "filters:",
		"vm: a\nactions: [{at: 1s}]\nexpect: [{counts: {delivered: 1}}]\n":      "actions[0]: want exactly one of",
		"vm: a\nduration: 2s\nactions: [{at: 5s, setLink: {host: h, nic: vmnic2}}]\nexpect: [{counts: {delivered: 1}}]\n":        "within the duration",
		"vm: a\nactions: [{at: 1s, setClock: {host: esx01}}]\nexpect: [{counts: {delivered: 1}}]\n":                              "setClock changes nothing",
		"vm: a\nactions: [{at: 1s, setClock: {host: esx01, drift: 3x}}]\nexpect: [{counts: {delivered: 1}}]\n":                   "parts per million",
		"vm: a\nactions: [{at: 1s, setLoss: {port: p, loss: 2}}]\nexpect: [{counts: {delivered: 1}}]\n":                          "loss 2",
		"vm: a\nactions: [{at: 1s, dropBurst: {host: esx01}}]\nexpect: [{counts: {delivered: 1}}]\n":                             "positive length",
		"vm: a\nactions: [{at: 1s, dropBurst: {host: h, length: 1s}, setLoss: {port: p}}]\nexpect: [{counts: {delivered: 1}}]\n": "exactly one of",
	} {
		_, err := Parse([]byte(body), "s.yaml")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "s.yaml") {
			t.Errorf("%q: %v; want an error of s.yaml containing %q", body, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "in type") {
			t.Errorf("%q: %v names a Go type", body, err)
		}
	}
}

// Traffic that would send nothing is an error: a kind that does not
// exist, a broadcast without the address it asks for.
func TestTrafficErrors(t *testing.T) {
	topo, err := lab.LoadConfig(filepath.Join("..", "configs", "lab-non-team-uplink.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		"traffic: [{kind: carrier-pigeon, from: ext1, to: web1}]":             `unknown traffic kind "carrier-pigeon"`,
		"traffic: [{kind: broadcast, from: ext1}]":                            "needs to:",
		"traffic: [{kind: ping, from: nobody, to: web1}]":                     `unknown VM or station "nobody"`,
		"traffic: [{kind: udp, from: ext1, to: web1}]":                        "positive rate",
		"traffic: [{kind: ping, from: ext1, to: web1, rate: 5}]":              "no rate",
		"actions: [{at: 1s, dropBurst: {host: esx09, length: 1s}}]":           `no host "esx09"`,
		"actions: [{at: 1s, setLoss: {port: Gi9/9, loss: 0.5}}]":              `no switch port "Gi9/9"`,
		"actions: [{at: 1s, setManagementLink: {host: esx01, latency: -1s}}]": "latency -1s",
	} {
		sc, err := Parse([]byte("vm: web1\n"+body+"\nexpect: [{counts: {delivered: 1}}]\n"), "s.yaml")
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		_, err = Run(context.Background(), sc, topo, Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error containing %q", body, err, want)
		}
	}
}

// A check must be able to fail: an expectation of a flow the trace never
// saw fails, even when it expects none of its frames filtered; a broadcast
// is sent (it used to send nothing in a check) and judged.
func TestRunFlowNeverSeen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab (-short)")
	}
	topo, err := lab.LoadConfig(filepath.Join("..", "configs", "lab-non-team-uplink.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := Parse([]byte(`vm: web1
duration: 2s
traffic:
  - {kind: broadcast, from: ext1, to: web1, interval: 200ms}
expect:
  - flow: ICMP echo request 10.9.9.9 > 10.8.8.8
    counts: {filtered_reverse_teaming: 0}
  - flow: ARP 00:1b:21:00:00:01 > ff:ff:ff:ff:ff:ff
    counts: {delivered_dups_removed: {min: 3}}
`), "never.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), sc, topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("results: %+v", res)
	}
	if r := res[0]; r.Pass || r.Note == "" || r.Got != 0 {
		t.Errorf("flow never seen: %+v; want a failure saying so", r)
	}
	if r := res[1]; !r.Pass {
		t.Errorf("broadcast from ext1 (flooded to both uplinks): %+v; want at least 3 delivered with the duplicate removed", r)
	}
}
