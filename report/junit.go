package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// JUnit XML, the one writer of the project's JUnit reports (audit, check):
// a <testsuites> document with one <testsuite> per JUnitSuite in the
// Apache Ant JUnit layout that Jenkins reads and its widely used XSD
// (windyroad/JUnit-Schema) describes: <testsuites> without attributes;
// each suite with name, package, id (0, 1, ...), timestamp (no zone),
// hostname, tests, failures, errors and time; <properties> (possibly
// empty), the cases, <system-out> and <system-err>; each case with name,
// classname and time; a failure or error always with a type. GitLab and
// GitHub test reporters read the same layout. Counts are computed from the
// cases.

// JUnitSuite is one <testsuite>.
type JUnitSuite struct {
	Name string
	// Package is the suite's package attribute; empty: Name.
	Package string
	// Timestamp is when the suite ran, written in UTC to the second
	// (JUnit's timestamp has no zone); required.
	Timestamp time.Time
	// Hostname is the machine the suite ran on; empty: "localhost", as
	// the Ant format says for a host name that cannot be determined.
	Hostname string
	// Time is how long the suite took; 0: the sum of its cases' times.
	Time       time.Duration
	Properties []JUnitProperty
	Cases      []JUnitCase
	// SystemOut and SystemErr are the suite's <system-out> and
	// <system-err> text (written, possibly empty, as the format requires).
	SystemOut, SystemErr string
}

// JUnitProperty is one <property> of a suite.
type JUnitProperty struct {
	Name, Value string
}

// JUnitCase is one <testcase>. At most one of Failure (the check ran and
// did not pass) and Error (it could not run) is set; neither: it passed.
type JUnitCase struct {
	ClassName string
	Name      string
	// Time is how long the case took (written as 0.000 when not known).
	Time    time.Duration
	Failure *JUnitFailure
	Error   *JUnitFailure
}

// JUnitFailure is the <failure> or <error> of a case: a one-line message,
// a type (empty: "failure" or "error") and a body of any length.
type JUnitFailure struct {
	Message string
	Type    string
	Body    string
}

// JUnit writes the suites as one JUnit XML document, with the XML header
// and a final newline. A suite without a name or timestamp, or a property
// or case without a name, is an error: readers of the format require them.
func JUnit(w io.Writer, suites []JUnitSuite) error {
	var doc junitSuites
	for id, s := range suites {
		if strings.TrimSpace(s.Name) == "" || s.Timestamp.IsZero() {
			return fmt.Errorf("report: JUnit: suite %d (%q) needs a name and a timestamp", id, s.Name)
		}
		xs := junitSuite{Name: s.Name, Package: s.Package, ID: id, Hostname: s.Hostname,
			Timestamp: s.Timestamp.UTC().Format("2006-01-02T15:04:05"),
			SystemOut: s.SystemOut, SystemErr: s.SystemErr}
		if xs.Package == "" {
			xs.Package = s.Name
		}
		if strings.TrimSpace(xs.Hostname) == "" {
			xs.Hostname = "localhost"
		}
		for _, p := range s.Properties {
			if strings.TrimSpace(p.Name) == "" {
				return fmt.Errorf("report: JUnit: suite %q: a property without a name", s.Name)
			}
			xs.Properties.List = append(xs.Properties.List, junitProperty(p))
		}
		var sum time.Duration
		for _, c := range s.Cases {
			if strings.TrimSpace(c.Name) == "" {
				return fmt.Errorf("report: JUnit: suite %q: a case without a name", s.Name)
			}
			xc := junitCase{ClassName: c.ClassName, Name: c.Name, Time: seconds(c.Time),
				Failure: junitFailureOf(c.Failure, "failure"), Error: junitFailureOf(c.Error, "error")}
			sum += c.Time
			xs.Tests++
			if c.Failure != nil {
				xs.Failures++
			}
			if c.Error != nil {
				xs.Errors++
			}
			xs.Cases = append(xs.Cases, xc)
		}
		if s.Time > 0 {
			sum = s.Time
		}
		xs.Time = seconds(sum)
		doc.Suites = append(doc.Suites, xs)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("report: JUnit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("report: JUnit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("report: JUnit: %w", err)
	}
	return nil
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func junitFailureOf(f *JUnitFailure, kind string) *junitFailure {
	if f == nil {
		return nil
	}
	t := f.Type
	if t == "" {
		t = kind
	}
	return &junitFailure{Message: f.Message, Type: t, Body: f.Body}
}

// The XML layout.

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       string          `xml:"time,attr"`
	Properties junitProperties `xml:"properties"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out"`
	SystemErr  string          `xml:"system-err"`
}

type junitProperties struct {
	List []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}
