package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
)

const schemaV2 = "schema/trace-v2.schema.json"

// v2 holds v1's content regrouped: the vocabulary, a host section with its
// clock, a section per vNIC; it validates, and it is open where it says it
// is (a new verdict id) and closed elsewhere.
func TestJSONV2(t *testing.T) {
	r := articleResult(t)
	var b bytes.Buffer
	vms := []VMTrace{{VM: "testvm2", NIC: "Network adapter 1", Host: "esx02", PortID: 50331657, Result: r},
		{VM: "testvm3", Host: "esx03", PortID: 50331658, Result: r}}
	m := Meta{Title: "trace of testvm2 and testvm3", Files: []string{"trace.pcapng"}, Clocks: []HostClock{{"esx02", -37 * time.Second, 3 * time.Millisecond}},
		Notes: []string{"3 frames of the pcapng are out of time order"}}
	if err := JSONV2(&b, vms, m); err != nil {
		t.Fatal(err)
	}
	testenv.ValidateJSON(t, schemaV2, b.Bytes())
	var doc struct {
		Schema   string
		Notes    []string
		Verdicts []struct{ ID, Description string }
		Hosts    []struct {
			Host  string
			Clock *struct {
				OffsetUS int64 `json:"offset_us"`
			}
		}
		VMs []struct {
			VM   string
			Port struct {
				PortID uint32 `json:"port_id"`
			}
			Totals map[string]int
		}
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != SchemaVersionV2 || len(doc.Verdicts) != 8 || doc.Verdicts[0].ID != "delivered" ||
		len(doc.Hosts) != 2 || doc.Hosts[0].Host != "esx02" || doc.Hosts[0].Clock == nil || doc.Hosts[0].Clock.OffsetUS != -37e6 || doc.Hosts[1].Clock != nil ||
		len(doc.VMs) != 2 || doc.VMs[1].Port.PortID != 50331658 || len(doc.Notes) != 1 {
		t.Errorf("document: %+v", doc)
	}
	var text bytes.Buffer
	if err := TextVMs(&text, vms, m); err != nil || !strings.Contains(text.String(), "\nNote: 3 frames of the pcapng are out of time order.\n") {
		t.Errorf("text (%v):\n%s", err, text.String())
	}
	// the same counts as v1
	var v1 bytes.Buffer
	JSON(&v1, r, Meta{})
	var one struct{ Totals map[string]int }
	json.Unmarshal(v1.Bytes(), &one)
	for k, n := range one.Totals {
		if doc.VMs[0].Totals[k] != n {
			t.Errorf("totals[%s] = %d; v1 has %d", k, doc.VMs[0].Totals[k], n)
		}
	}
	open := strings.Replace(b.String(), `"inconclusive": `, `"lost_in_network": 0, "inconclusive": `, 1)
	if err := testenv.SchemaError(schemaV2, []byte(open)); err != nil {
		t.Errorf("a new verdict id is refused: %v", err)
	}
	for _, bad := range [][2]string{
		{`"schema": "capturectl.trace/v2"`, `"schema": "capturectl.trace/v1"`},
		{`"window_us":`, `"window_ms": 1, "window_us":`},
		{`"delivered": `, `"Delivered!": `},
	} {
		doc := strings.Replace(b.String(), bad[0], bad[1], 1)
		if doc == b.String() {
			t.Fatalf("%q not in the document", bad[0])
		}
		if testenv.SchemaError(schemaV2, []byte(doc)) == nil {
			t.Errorf("%q -> %q validates", bad[0], bad[1])
		}
	}
	if err := JSONV2(&b, nil, m); err == nil {
		t.Error("no vNIC accepted")
	}
}
