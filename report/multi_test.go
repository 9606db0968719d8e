package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/esxi"
)

// One vNIC: TextVMs and HTMLVMs are Text and HTML. Several: a section
// each (a heading naming the vNIC, its own port line), a conclusion line
// per vNIC, the files once.
func TestReportsOfSeveralVMs(t *testing.T) {
	r := articleResult(t)
	m := Meta{Title: "trace of testvm2", Host: "esx02", PortID: 50331657, Files: []string{"a.json"}}
	var one, text bytes.Buffer
	if err := Text(&one, r, m); err != nil {
		t.Fatal(err)
	}
	if err := TextVMs(&text, []VMTrace{{VM: "testvm2", NIC: "Network adapter 1", Host: "esx02", PortID: 50331657, Result: r}}, m); err != nil {
		t.Fatal(err)
	}
	if one.String() != text.String() {
		t.Errorf("one vNIC: TextVMs differs from Text:\n%s\n---\n%s", text.String(), one.String())
	}
	vms := []VMTrace{{VM: "a", NIC: "Network adapter 1", Host: "esx01", PortID: 7, Result: r}, {VM: "b", NIC: "Network adapter 2", Host: "esx02", PortID: 9, Result: r}}
	text.Reset()
	if err := TextVMs(&text, vms, Meta{Title: "trace of 2 vNICs", Files: []string{"a.json"}}); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{"== a Network adapter 1 on esx01, port 7\n", "== b Network adapter 2 on esx02, port 9\n", "== 2 vNICs\n",
		"  b Network adapter 2 on esx02, port 9: " + Conclusion(r)} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Count(out, "Wrote a.json") != 1 || strings.Count(out, "\nFlows:") != 2 {
		t.Errorf("sections or files:\n%s", out)
	}
	var html bytes.Buffer
	if err := HTMLVMs(&html, vms, Meta{Title: "trace of 2 vNICs"}); err != nil {
		t.Fatal(err)
	}
	if h := html.String(); strings.Count(h, `<h2 class="vm">`) != 2 || strings.Count(h, "<html") != 1 || !strings.Contains(h, "b Network adapter 2 on esx02, port 9") {
		t.Errorf("HTML sections:\n%s", h)
	}
	if got := TargetsLine([]esxi.Target{{VM: "a", NIC: "n", Host: "h", PortID: 3, TeamUplink: "vmnic2"}}); !strings.HasPrefix(got, "a n (port 3 on h, VLAN 0, ") {
		t.Errorf("targets line %q", got)
	}
}
