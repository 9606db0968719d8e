package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"
)

// JUnit XML, the one writer of the project's JUnit reports (audit, check):
// a <testsuites> document with one <testsuite> per JUnitSuite, as CI
// systems (Jenkins, GitLab, GitHub test reporters) read it. Counts
// (tests, failures, errors) are computed from the cases.

// JUnitSuite is one <testsuite>.
type JUnitSuite struct {
	Name string
	// Timestamp is when the suite ran, written in UTC to the second
	// (JUnit's timestamp has no zone); zero: not written.
	Timestamp  time.Time
	Properties []JUnitProperty
	Cases      []JUnitCase
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
	// Time is how long the case took; 0: not written.
	Time    time.Duration
	Failure *JUnitFailure
	Error   *JUnitFailure
}

// JUnitFailure is the <failure> or <error> of a case: a one-line message,
// a type (empty: not written) and a body of any length.
type JUnitFailure struct {
	Message string
	Type    string
	Body    string
}

// JUnit writes the suites as one JUnit XML document named name, with the
// XML header and a final newline.
func JUnit(w io.Writer, name string, suites []JUnitSuite) error {
	doc := junitSuites{Name: name}
	for _, s := range suites {
		xs := junitSuite{Name: s.Name}
		if !s.Timestamp.IsZero() {
			xs.Timestamp = s.Timestamp.UTC().Format("2006-01-02T15:04:05")
		}
		if len(s.Properties) > 0 { // "properties>property,omitempty" would still write <properties>
			xs.Properties = &junitProperties{}
			for _, p := range s.Properties {
				xs.Properties.List = append(xs.Properties.List, junitProperty(p))
			}
		}
		for _, c := range s.Cases {
			xc := junitCase{ClassName: c.ClassName, Name: c.Name, Failure: junitFailureOf(c.Failure), Error: junitFailureOf(c.Error)}
			if c.Time > 0 {
				xc.Time = strconv.FormatFloat(c.Time.Seconds(), 'f', 3, 64)
			}
			xs.Tests++
			if c.Failure != nil {
				xs.Failures++
			}
			if c.Error != nil {
				xs.Errors++
			}
			xs.Cases = append(xs.Cases, xc)
		}
		doc.Tests += xs.Tests
		doc.Failures += xs.Failures
		doc.Errors += xs.Errors
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

func junitFailureOf(f *JUnitFailure) *junitFailure {
	if f == nil {
		return nil
	}
	return &junitFailure{Message: f.Message, Type: f.Type, Body: f.Body}
}

// The XML layout.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
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
	Time      string        `xml:"time,attr,omitempty"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}
