package report

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
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
