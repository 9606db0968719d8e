package report

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/internal/testenv"
)

// The JSON report validates against the published schema
// (report/schema/trace-v1.schema.json), and the schema rejects a report
// with an unknown verdict.
func TestJSONSchema(t *testing.T) {
	f, err := os.Open("schema/trace-v1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("trace-v1.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("trace-v1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := JSON(&b, articleResult(t), Meta{Title: "t", Host: "esx02", PortID: 50331657, Files: []string{"x"}, Clocks: []HostClock{{"esx02", -37 * time.Second, 3 * time.Millisecond}}}); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("report does not validate: %v\n%s", err, b.String())
	}
	var m map[string]any
	json.Unmarshal(b.Bytes(), &m)
	m["totals"].(map[string]any)["bogus_verdict"] = 1
	bad, _ := json.Marshal(m)
	inst, _ = jsonschema.UnmarshalJSON(strings.NewReader(string(bad)))
	if err := sch.Validate(inst); err == nil {
		t.Error("a report with an unknown verdict validates; want the schema to reject it")
	}
}

// The audit and discover documents validate against their schemas, and
// the schemas reject what a reader could not use.
func TestAuditDiscoverSchemas(t *testing.T) {
	const auditSchema, discoverSchema = "schema/audit-v1.schema.json", "schema/discover-v1.schema.json"
	var b bytes.Buffer
	if err := AuditJSON(&b, goldenAudit()); err != nil {
		t.Fatal(err)
	}
	testenv.ValidateJSON(t, auditSchema, b.Bytes())
	b.Reset()
	AuditJSON(&b, &Audit{Generated: time.Unix(0, 0)})
	testenv.ValidateJSON(t, auditSchema, b.Bytes())

	targets := []esxi.Target{
		{VM: "testvm2", VMRef: "vm-1", VMPath: "/DC0/vm/testvm2", PowerState: "poweredOn", Host: "esx02", HostRef: "host-2",
			NIC: "Network adapter 1", NICKey: 4000, MAC: "00:50:56:9d:fd:b1", Connected: true, Portgroup: "VLAN100", VLAN: 100,
			SwitchType: esxi.SwitchStandard, VSwitch: "vSwitch1", Uplinks: []esxi.Uplink{{Name: "vmnic2"}, {Name: "vmnic3"}},
			TeamingPolicy: "loadbalance_srcid", ActiveUplinks: []string{"vmnic2", "vmnic3"}, BlindSpot: true,
			PortID: 50331657, TeamUplink: "vmnic2", PortSource: esxi.PortSourceAPI, Selected: true},
		{VM: "db", VMRef: "vm-2", PowerState: "poweredOff", Host: "esx01", HostRef: "host-1", NIC: "Network adapter 2", MAC: "00:50:56:00:00:02",
			Portgroup: "dvPG", VLAN: 4095, VLANTrunk: "100-200", SwitchType: esxi.SwitchDistributed, VSwitch: "DSwitch",
			DVSUUID: "50 17 d4 16 3d ac 54 90-c8 d0 0a 7a 4f 3c bd 0e", DVPortgroupKey: "dvportgroup-11", DVPort: "17",
			Uplinks: []esxi.Uplink{{Name: "lag1", LAG: true}, {Name: "Uplink 1", NIC: "vmnic4"}}, TeamingPolicy: "loadbalance_ip",
			ActiveUplinks: []string{"lag1"}, PortNote: "the VM is powered off: it has no port"},
	}
	b.Reset()
	if err := DiscoverJSON(&b, targets); err != nil {
		t.Fatal(err)
	}
	testenv.ValidateJSON(t, discoverSchema, b.Bytes())
	if targets[1].StandbyUplinks != nil {
		t.Error("DiscoverJSON changed the caller's targets")
	}

	for _, bad := range []struct{ schema, doc, old, new string }{
		{discoverSchema, b.String(), `"mac": "00:50:56:9d:fd:b1"`, `"mac": "00-50-56-9D-FD-B1"`},
		{discoverSchema, b.String(), `"port_source": "esxcli via vSphere API",`, ``},
		{discoverSchema, b.String(), `"version": 1`, `"version": 2`},
		{discoverSchema, b.String(), `"vlan": 100,`, `"vlan": 100, "vlan_id": 100,`},
	} {
		doc := strings.Replace(bad.doc, bad.old, bad.new, 1)
		if doc == bad.doc {
			t.Fatalf("%q not in the document", bad.old)
		}
		if testenv.SchemaError(bad.schema, []byte(doc)) == nil {
			t.Errorf("%s: %q -> %q validates; want it refused", bad.schema, bad.old, bad.new)
		}
	}
	b.Reset()
	AuditJSON(&b, goldenAudit())
	for _, bad := range [][2]string{
		{`"severity": "high"`, `"severity": "urgent"`},
		{`"schema": "capturectl.audit/v1"`, `"schema": "capturectl.audit/v2"`},
		{`"kind": "vswitch"`, `"kind": "router"`},
	} {
		doc := strings.Replace(b.String(), bad[0], bad[1], 1)
		if doc == b.String() {
			t.Fatalf("%q not in the audit document", bad[0])
		}
		if testenv.SchemaError(auditSchema, []byte(doc)) == nil {
			t.Errorf("audit: %q -> %q validates; want it refused", bad[0], bad[1])
		}
	}
}
