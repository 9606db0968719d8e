package testenv

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CheckAntJUnit checks doc against the rules of the Apache Ant JUnit
// schema that Jenkins' JUnit plugin follows (the widely used
// windyroad/JUnit-Schema JUnit.xsd, not shipped here): element order and
// cardinality, required and allowed attributes and their types. When
// CAPTURECTL_JUNIT_XSD names a copy of that XSD and xmllint is installed,
// the document is validated against it as well.
func CheckAntJUnit(t testing.TB, doc []byte) {
	t.Helper()
	if err := AntJUnit(doc); err != nil {
		t.Errorf("not Ant JUnit: %v\n%s", err, doc)
	}
	if xsd := os.Getenv("CAPTURECTL_JUNIT_XSD"); xsd != "" {
		f := filepath.Join(t.TempDir(), "junit.xml")
		if err := os.WriteFile(f, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("xmllint", "--noout", "--schema", xsd, f).CombinedOutput(); err != nil {
			t.Errorf("xmllint --schema %s: %v\n%s", xsd, err, out)
		}
	}
}

// node is a generic XML element.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

var (
	antTimestamp = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$`)
	xsdDecimal   = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
)

// AntJUnit returns the first way doc breaks the Ant JUnit schema's rules.
func AntJUnit(doc []byte) error {
	var root node
	if err := xml.NewDecoder(bytes.NewReader(doc)).Decode(&root); err != nil {
		return err
	}
	if root.XMLName.Local != "testsuites" || len(root.Attrs) > 0 {
		return fmt.Errorf("root <%s> with %d attributes; want <testsuites> without attributes", root.XMLName.Local, len(root.Attrs))
	}
	for id, s := range root.Nodes {
		if s.XMLName.Local != "testsuite" {
			return fmt.Errorf("<%s> in <testsuites>", s.XMLName.Local)
		}
		a, err := attrs(s, map[string]string{"name": "token1", "package": "token", "id": "int", "timestamp": "timestamp",
			"hostname": "token1", "tests": "int", "failures": "int", "errors": "int", "time": "decimal"}, map[string]string{"skipped": "int"})
		if err != nil {
			return fmt.Errorf("testsuite %d: %w", id, err)
		}
		if a["id"] != strconv.Itoa(id) {
			return fmt.Errorf("testsuite %d has id %s", id, a["id"])
		}
		var names []string
		for _, c := range s.Nodes {
			names = append(names, c.XMLName.Local)
		}
		seq := strings.Join(names, " ")
		if !regexp.MustCompile(`^properties( testcase)* system-out system-err$`).MatchString(seq) {
			return fmt.Errorf("testsuite %q children %q; want properties, testcase*, system-out, system-err", a["name"], seq)
		}
		tests, failures, errs := 0, 0, 0
		for _, c := range s.Nodes {
			switch c.XMLName.Local {
			case "properties":
				for _, p := range c.Nodes {
					if p.XMLName.Local != "property" {
						return fmt.Errorf("<%s> in <properties>", p.XMLName.Local)
					}
					if _, err := attrs(p, map[string]string{"name": "token1", "value": "string"}, nil); err != nil {
						return fmt.Errorf("property: %w", err)
					}
				}
			case "testcase":
				tests++
				if _, err := attrs(c, map[string]string{"name": "token", "classname": "token", "time": "decimal"}, nil); err != nil {
					return fmt.Errorf("testcase: %w", err)
				}
				if len(c.Nodes) > 1 {
					return fmt.Errorf("testcase with %d children; want at most one of skipped, error, failure", len(c.Nodes))
				}
				for _, r := range c.Nodes {
					switch r.XMLName.Local {
					case "failure":
						failures++
					case "error":
						errs++
					case "skipped":
						continue
					default:
						return fmt.Errorf("<%s> in <testcase>", r.XMLName.Local)
					}
					if len(r.Nodes) > 0 {
						return fmt.Errorf("<%s> has child elements", r.XMLName.Local)
					}
					if _, err := attrs(r, map[string]string{"type": "string"}, map[string]string{"message": "string"}); err != nil {
						return fmt.Errorf("%s: %w", r.XMLName.Local, err)
					}
				}
			default: // system-out, system-err: text only
				if len(c.Nodes) > 0 || len(c.Attrs) > 0 {
					return fmt.Errorf("<%s> has attributes or child elements", c.XMLName.Local)
				}
			}
		}
		// Not in the XSD, but what readers rely on: the counts agree.
		if a["tests"] != strconv.Itoa(tests) || a["failures"] != strconv.Itoa(failures) || a["errors"] != strconv.Itoa(errs) {
			return fmt.Errorf("testsuite %q counts tests=%s failures=%s errors=%s; its cases hold %d, %d, %d",
				a["name"], a["tests"], a["failures"], a["errors"], tests, failures, errs)
		}
	}
	return nil
}

// attrs checks n's attributes: every required one present and well-typed,
// no other than the optional ones.
func attrs(n node, required, optional map[string]string) (map[string]string, error) {
	got := map[string]string{}
	for _, a := range n.Attrs {
		typ, ok := required[a.Name.Local]
		if !ok {
			if typ, ok = optional[a.Name.Local]; !ok {
				return nil, fmt.Errorf("attribute %s not allowed", a.Name.Local)
			}
		}
		v := a.Value
		var bad bool
		switch typ {
		case "int":
			_, err := strconv.ParseInt(v, 10, 32)
			bad = err != nil
		case "decimal":
			bad = !xsdDecimal.MatchString(v)
		case "timestamp":
			_, err := time.Parse("2006-01-02T15:04:05", v)
			bad = !antTimestamp.MatchString(v) || err != nil
		case "token1":
			bad = strings.Join(strings.Fields(v), " ") == ""
		}
		if bad {
			return nil, fmt.Errorf("attribute %s=%q is not a valid %s", a.Name.Local, v, typ)
		}
		got[a.Name.Local] = v
	}
	for k := range required {
		if _, ok := got[k]; !ok {
			return nil, fmt.Errorf("<%s> lacks the required attribute %s", n.XMLName.Local, k)
		}
	}
	return got, nil
}
