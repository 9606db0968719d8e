package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces DESIGN.md §3: imports flow one way and only the
// command links the emulated lab.
func TestImportRules(t *testing.T) {
	const mod = "github.com/capturectl/capturectl/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// allowed[pkg] lists the project packages pkg may import (prefix match).
	allowed := map[string][]string{
		"pktcap":          {},
		"teaming":         {},
		"correlate":       {"pktcap", "teaming"},
		"report":          {"correlate", "audit", "esxi", "pktcap", "teaming"},
		"esxi":            {"pktcap", "teaming", "internal/redact"},
		"audit":           {"esxi", "pktcap", "teaming"},
		"session":         {"esxi", "pktcap"},
		"trace":           {"session", "esxi", "correlate", "pktcap", "teaming"},
		"scenario":        {"trace", "session", "esxi", "correlate", "pktcap", "lab"},
		"oracle":          {"scenario", "trace", "correlate", "lab"}, // the ground-truth harness; nothing imports it
		"ingest":          {"correlate", "pktcap"},
		"extcap":          {"pktcap"},
		"lab":             {"pktcap", "teaming", "lab/internal/"},
		"lab/internal/":   {"lab/internal/"},
		"lab/labtest":     {"lab", "internal/"}, // test helpers for the lab; imported by nothing but tests
		"configs":         {},
		"internal/":       {}, // test helpers
		"internal/redact": {}, // secrets out of every message, log and report
		"cmd/capturectl":  {"esxi", "audit", "session", "correlate", "ingest", "report", "pktcap", "lab", "configs", "trace", "scenario", "teaming", "extcap", "internal/redact"},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		rel := strings.TrimPrefix(pkg, mod)
		rule, ok := ruleFor(allowed, rel)
		if !ok {
			t.Errorf("package %s has no import rule; add it to TestImportRules", rel)
			continue
		}
		checked++
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			dep := strings.TrimPrefix(imp, mod)
			if !permitted(rule, dep) {
				t.Errorf("%s imports %s: not allowed (DESIGN.md §3)", rel, dep)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("checked only %d packages; go list output: %q", checked, out)
	}
}

func ruleFor(allowed map[string][]string, rel string) ([]string, bool) {
	if r, ok := allowed[rel]; ok {
		return r, true
	}
	best := ""
	for k := range allowed {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(rel, k) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return nil, false
	}
	return allowed[best], true
}

func permitted(rule []string, dep string) bool {
	for _, a := range rule {
		if dep == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a)) {
			return true
		}
	}
	return false
}
