package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/capturectl/capturectl/audit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with the file testdata/golden/audit/name at the top
// of the module, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", "audit", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file %s (go test -update rewrites it)\ngot:\n%s", name, path, got)
	}
}

// goldenAudit is an audit with every field set somewhere: findings with
// and without a port group, VMs, visibility and related paths, a finding
// whose path is not a checked object, names that need escaping in every
// format, a vNIC index (which the JSON leaves out), and verify results
// with and without an error.
func goldenAudit() *Audit {
	return &Audit{
		Generated: time.Date(2026, 3, 1, 2, 3, 4, 500_000_000, time.FixedZone("CET", 3600)),
		Checks: []audit.Check{
			{ID: "RT001", Severity: "high", Summary: "promiscuous port group with the reverse-teaming blind spot"},
			{ID: "RT002", Severity: "high", Summary: "IP hash next to other teaming policies on the same uplinks"},
			{ID: "RT003", Severity: "medium", Summary: "IP hash with standby or unused uplinks"},
			{ID: "RT004", Severity: "medium", Summary: "promiscuous port group on one uplink, monitored VMs on others"},
			{ID: "RT005", Severity: "medium", Summary: "LAG active together with standalone uplinks"},
		},
		Result: audit.Result{
			Datacenter: "DC0",
			Hosts:      []string{"esx01", "esx02"},
			Objects: []audit.Object{
				{Path: "DC0/DSwitch", Kind: "dvswitch"},
				{Path: "DC0/DSwitch/dvPG <Mon> & \"all\"", Kind: "dvportgroup"},
				{Path: "DC0/esx01/vSwitch1", Kind: "vswitch", Host: "esx01"},
				{Path: "DC0/esx01/vSwitch1/App", Kind: "portgroup", Host: "esx01"},
				{Path: "DC0/esx02/vSwitch1", Kind: "vswitch", Host: "esx02"},
			},
			Findings: []audit.Finding{
				{
					ID: "RT001", Severity: "high", Path: "DC0/DSwitch/dvPG <Mon> & \"all\"", Datacenter: "DC0",
					SwitchType: "distributed", Switch: "DSwitch", Portgroup: "dvPG <Mon> & \"all\"",
					Title:         "promiscuous port group dvPG <Mon> & \"all\" on distributed switch DSwitch has the reverse-teaming blind spot",
					Detail:        "each port transmits on one team uplink → the monitor misses frames",
					Fix:           "give dvPG <Mon> & \"all\" explicit failover",
					TeamingPolicy: "loadbalance_srcid", ActiveUplinks: []string{"Uplink 1", "Uplink 2"},
					VMs: []audit.AffectedVM{
						{Name: "mon", Ref: "vm-41", Host: "esx01", NIC: "Network adapter 1", MAC: "00:50:56:00:00:01", PowerState: "poweredOn"},
						{Name: "mon-spare", Ref: "vm-42", Host: "esx02", NIC: "Network adapter 2", NICIndex: 1, MAC: "00:50:56:00:00:02", PowerState: "poweredOff"},
					},
					Visibility: []audit.Visibility{
						{Source: "a VM on this host", Destination: "a VM on this host", Seen: "yes", Note: ""},
						{Source: "outside the host", Destination: "a VM on this host", Seen: "partly", Note: "only frames that arrive on the monitor VM's own team uplink"},
					},
				},
				{
					ID: "RT002", Severity: "high", Path: "DC0/esx01/vSwitch1", Datacenter: "DC0", Host: "esx01",
					SwitchType: "standard", Switch: "vSwitch1",
					Title:  "vSwitch vSwitch1 on esx01 mixes IP hash (Web) with other teaming policies (App (route based on originating port ID)) on uplinks vmnic2, vmnic3",
					Detail: "IP hash needs a static EtherChannel", Fix: "use one teaming policy",
					Related: []string{"DC0/esx01/vSwitch1/App", "DC0/esx01/vSwitch1/Web"},
				},
				{
					ID: "RT003", Severity: "medium", Path: "DC0/esx01/vSwitch1/Web", Datacenter: "DC0", Cluster: "Prod", Host: "esx01",
					SwitchType: "standard", Switch: "vSwitch1", Portgroup: "Web",
					Title: "port group Web on vSwitch vSwitch1 on esx01 uses IP hash with standby vmnic4", Detail: "every uplink must be active\nand the EtherChannel as large", Fix: "make every uplink active",
					TeamingPolicy: "loadbalance_ip", ActiveUplinks: []string{"vmnic2", "vmnic3"}, StandbyUplinks: []string{"vmnic4"}, VMs: []audit.AffectedVM{},
				},
			},
		},
		Verify: []AuditVerify{
			{Finding: "RT001", Path: "DC0/DSwitch/dvPG <Mon> & \"all\"", VM: "mon", Host: "esx01",
				Totals: map[string]int{"filtered_reverse_teaming": 3, "local": 2, "delivered": 1}, Filtered: true,
				Conclusion: "3 frames were filtered by reverse teaming",
				Missed:     []AuditMissed{{Flow: "ICMP echo request 10.0.0.1 > 10.0.0.2", Filtered: 3}}},
			{Finding: "RT001", Path: "DC0/DSwitch/dvPG <Mon> & \"all\"", VM: "mon2", Host: "esx02", Error: "trace --vm VirtualMachine:vm-43: ssh: \"refused\""},
		},
		VerifyDuration: 2500 * time.Millisecond,
	}
}

// Every audit renderer, byte for byte, over a fixed audit.
func TestAuditGolden(t *testing.T) {
	render := map[string]func(*bytes.Buffer, *Audit) error{
		"sample.json":      func(b *bytes.Buffer, a *Audit) error { return AuditJSON(b, a) },
		"sample.xml":       func(b *bytes.Buffer, a *Audit) error { return AuditJUnit(b, a) },
		"sample.txt":       func(b *bytes.Buffer, a *Audit) error { return AuditText(b, a, false) },
		"sample-color.txt": func(b *bytes.Buffer, a *Audit) error { return AuditText(b, a, true) },
		"sample.prom":      func(b *bytes.Buffer, a *Audit) error { return AuditPrometheus(b, a) },
		"empty.json":       func(b *bytes.Buffer, a *Audit) error { return AuditJSON(b, &Audit{Generated: a.Generated}) },
		"empty.xml":        func(b *bytes.Buffer, a *Audit) error { return AuditJUnit(b, &Audit{Generated: a.Generated}) },
		"failed.prom": func(b *bytes.Buffer, a *Audit) error {
			return AuditPrometheus(b, &Audit{Generated: a.Generated, Checks: a.Checks, Error: "login failed"})
		},
	}
	for name, r := range render {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := r(&b, goldenAudit()); err != nil {
				t.Fatal(err)
			}
			if b.Len() == 0 {
				t.Fatal("nothing written")
			}
			golden(t, name, b.Bytes())
		})
	}
}
