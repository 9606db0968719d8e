package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
)

var ts = time.Date(2026, 3, 1, 2, 3, 4, 0, time.FixedZone("CET", 3600))

// The generic writer as `capturectl check` uses it: two suites, a failure
// without a type, an error, a case time, properties on one suite only.
func TestJUnit(t *testing.T) {
	suites := []JUnitSuite{
		{Name: "article-duplicates-removed", Package: "capturectl.check", Timestamp: ts, Hostname: "ci-7", Cases: []JUnitCase{
			{ClassName: "article-duplicates-removed", Name: "echo request: delivered, duplicates removed", Time: 1500 * time.Millisecond},
			{ClassName: "article-duplicates-removed", Name: "echo reply: delivered", Failure: &JUnitFailure{Message: "got 0, want >= 1", Body: "0 frames with verdict delivered; expected >= 1 <&>"}},
		}},
		{Name: "monitor-blind-spot", Timestamp: ts, Time: 4 * time.Second,
			Properties: []JUnitProperty{{"lab", "configs/lab-promiscuous-monitor.yaml"}},
			Cases: []JUnitCase{
				{ClassName: "monitor-blind-spot", Name: "run", Error: &JUnitFailure{Message: "lab: start: address in use", Type: "setup"}},
			}},
	}
	var b bytes.Buffer
	if err := JUnit(&b, suites); err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="article-duplicates-removed" package="capturectl.check" id="0" timestamp="2026-03-01T01:03:04" hostname="ci-7" tests="2" failures="1" errors="0" time="1.500">
    <properties></properties>
    <testcase classname="article-duplicates-removed" name="echo request: delivered, duplicates removed" time="1.500"></testcase>
    <testcase classname="article-duplicates-removed" name="echo reply: delivered" time="0.000">
      <failure message="got 0, want &gt;= 1" type="failure">0 frames with verdict delivered; expected &gt;= 1 &lt;&amp;&gt;</failure>
    </testcase>
    <system-out></system-out>
    <system-err></system-err>
  </testsuite>
  <testsuite name="monitor-blind-spot" package="monitor-blind-spot" id="1" timestamp="2026-03-01T01:03:04" hostname="localhost" tests="1" failures="0" errors="1" time="4.000">
    <properties>
      <property name="lab" value="configs/lab-promiscuous-monitor.yaml"></property>
    </properties>
    <testcase classname="monitor-blind-spot" name="run" time="0.000">
      <error message="lab: start: address in use" type="setup"></error>
    </testcase>
    <system-out></system-out>
    <system-err></system-err>
  </testsuite>
</testsuites>
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	testenv.CheckAntJUnit(t, b.Bytes())
	// What a JUnit reader sees.
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if f := doc.Suites[0].Cases[1].Failure; f == nil || f.Body != "0 frames with verdict delivered; expected >= 1 <&>" {
		t.Errorf("failure read back as %+v", f)
	}

	// No suites: an empty document, not an error.
	b.Reset()
	if err := JUnit(&b, nil); err != nil || !strings.Contains(b.String(), `<testsuites></testsuites>`) {
		t.Errorf("no suites: %v\n%s", err, b.String())
	}
	testenv.CheckAntJUnit(t, b.Bytes())
}

// What the format's readers require is refused rather than written.
func TestJUnitRefusesIncomplete(t *testing.T) {
	for _, s := range []JUnitSuite{
		{Name: "", Timestamp: ts},
		{Name: "s"},
		{Name: "s", Timestamp: ts, Properties: []JUnitProperty{{"", "v"}}},
		{Name: "s", Timestamp: ts, Cases: []JUnitCase{{ClassName: "c"}}},
	} {
		if err := JUnit(io.Discard, []JUnitSuite{s}); err == nil || !strings.HasPrefix(err.Error(), "report: JUnit: ") {
			t.Errorf("%+v: err %v; want a report: JUnit error", s, err)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

// A write error is returned, wrapped, wherever it happens.
func TestJUnitWriteError(t *testing.T) {
	for n := 0; n < 3; n++ {
		err := JUnit(&failWriter{n: n}, []JUnitSuite{{Name: "s", Timestamp: ts, Cases: []JUnitCase{{Name: "c"}}}})
		if err == nil || !strings.Contains(err.Error(), "report: JUnit: ") || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("after %d writes: err %v; want report: JUnit: ... disk full", n, err)
		}
	}
}
