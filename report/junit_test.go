package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"
)

// The generic writer as `capturectl check` would use it: two suites, a
// failure without a type, an error, a case time, no timestamp.
func TestJUnit(t *testing.T) {
	suites := []JUnitSuite{
		{Name: "article-duplicates-removed", Cases: []JUnitCase{
			{ClassName: "article-duplicates-removed", Name: "echo request: delivered, duplicates removed", Time: 1500 * time.Millisecond},
			{ClassName: "article-duplicates-removed", Name: "echo reply: delivered", Failure: &JUnitFailure{Message: "got 0, want >= 1", Body: "0 frames with verdict delivered; expected >= 1 <&>"}},
		}},
		{Name: "monitor-blind-spot", Timestamp: time.Date(2026, 3, 1, 2, 3, 4, 0, time.FixedZone("CET", 3600)),
			Properties: []JUnitProperty{{"lab", "configs/lab-promiscuous-monitor.yaml"}},
			Cases: []JUnitCase{
				{ClassName: "monitor-blind-spot", Name: "run", Error: &JUnitFailure{Message: "lab: start: address in use", Type: "setup"}},
			}},
	}
	var b bytes.Buffer
	if err := JUnit(&b, "capturectl check", suites); err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="capturectl check" tests="3" failures="1" errors="1">
  <testsuite name="article-duplicates-removed" tests="2" failures="1" errors="0">
    <testcase classname="article-duplicates-removed" name="echo request: delivered, duplicates removed" time="1.500"></testcase>
    <testcase classname="article-duplicates-removed" name="echo reply: delivered">
      <failure message="got 0, want &gt;= 1">0 frames with verdict delivered; expected &gt;= 1 &lt;&amp;&gt;</failure>
    </testcase>
  </testsuite>
  <testsuite name="monitor-blind-spot" tests="1" failures="0" errors="1" timestamp="2026-03-01T01:03:04">
    <properties>
      <property name="lab" value="configs/lab-promiscuous-monitor.yaml"></property>
    </properties>
    <testcase classname="monitor-blind-spot" name="run">
      <error message="lab: start: address in use" type="setup"></error>
    </testcase>
  </testsuite>
</testsuites>
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
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
	if err := JUnit(&b, "none", nil); err != nil || !strings.Contains(b.String(), `<testsuites name="none" tests="0" failures="0" errors="0"></testsuites>`) {
		t.Errorf("no suites: %v\n%s", err, b.String())
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
		err := JUnit(&failWriter{n: n}, "x", []JUnitSuite{{Name: "s", Cases: []JUnitCase{{Name: "c"}}}})
		if err == nil || !strings.Contains(err.Error(), "report: JUnit: ") || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("after %d writes: err %v; want report: JUnit: ... disk full", n, err)
		}
	}
}
