package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/capturectl/capturectl/correlate"
)

// HTML writes a self-contained page: the traced port, the capture points,
// and for each flow its verdict counts and an SVG picture of its path —
// uplinks → PortOutput → VnicRx with the copies counted on each edge, and
// the copies reverse teaming dropped drawn where they were dropped.
func HTML(w io.Writer, r *correlate.Result, m Meta) error {
	return HTMLVMs(w, []VMTrace{{Host: m.Host, PortID: m.PortID, Result: r}}, m)
}

// HTMLVMs is HTML for a run over several vNICs: a section per vNIC (its
// heading naming it when there are several), in one page.
func HTMLVMs(w io.Writer, vms []VMTrace, m Meta) error {
	type flowView struct {
		Title  string
		Counts string
		SVG    template.HTML
		Ex     []correlate.Example
	}
	var sections []map[string]any
	for _, v := range vms {
		r := v.Result
		var flows []flowView
		for _, f := range SortedFlows(r) {
			flows = append(flows, flowView{Title: f.Key.String(), Counts: countsText(f.Counts), SVG: template.HTML(pathSVG(r, f)), Ex: f.Examples})
		}
		heading := ""
		if len(vms) > 1 {
			heading = vmHeading(v)
		}
		sections = append(sections, map[string]any{
			"Heading": heading, "Port": portLine(r, Meta{Host: v.Host, PortID: v.PortID}), "Points": r.Points, "Flows": flows,
			"Conclusion": Conclusion(r), "Check": r.TeamUplinkCheck, "Changes": r.TeamUplinks, "Filtered": r.Filtered(),
		})
	}
	title := m.Title
	if title == "" {
		title = "capturectl trace"
	}
	return htmlTmpl.Execute(w, map[string]any{"Title": title, "VMs": sections, "Path": pathView(m.Path)})
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{"clock": clock}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.flow{border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
.result{font-weight:600;padding:.6em;border-radius:4px;background:#eef6ee}.bad{background:#fbeaea}
.ex{font-family:monospace;font-size:90%}
</style></head><body>
<h1>{{.Title}}</h1>
{{range .VMs}}{{template "vm" .}}{{end}}
{{with .Path}}<h2 class="path">Whole path: {{.Title}}</h2>
<p>{{.Clock}}</p>
{{range .Totals}}<p>{{.}}</p>{{end}}
{{range .Flows}}<div class="flow"><h3>{{.Title}}</h3><p>{{.Counts}}</p>{{.SVG}}
{{range .Ex}}<div class="ex">{{clock .First}} {{.Verdict}}: {{.Reason}}</div>{{end}}</div>{{end}}{{end}}
</body></html>
{{define "vm"}}{{if .Heading}}<h2 class="vm">{{.Heading}}</h2>{{end}}
<p>Traced: {{.Port}}</p>
<p class="result{{if .Filtered}} bad{{end}}">{{.Conclusion}}</p>
{{if .Check.Disagree}}<p class="result bad">Team uplink: {{.Check.Detail}}</p>{{end}}
{{if gt (len .Changes) 1}}<h2>Team uplink changes</h2><ul>{{range .Changes}}<li>{{if .At.IsZero}}start{{else}}{{clock .At}}{{end}}: {{.Uplink}} ({{.Source}})</li>{{end}}</ul>{{end}}
<h2>Capture points</h2>
<table><tr><th>point</th><th>frames</th><th>duplicates</th><th>dropped</th><th>capturing</th></tr>
{{range .Points}}<tr><td>{{.Name}}</td><td>{{.Observations}}</td><td>{{.Duplicates}}</td><td>{{if .DropsUnknown}}unknown{{else}}{{.Dropped}}{{end}}</td><td>{{clock .Start}} – {{clock .Stop}}</td></tr>
{{end}}</table>
<h2>Flows</h2>
{{range .Flows}}<div class="flow"><h3>{{.Title}}</h3><p>{{.Counts}}</p>{{.SVG}}
{{range .Ex}}<div class="ex">{{clock .First}} {{.Verdict}}: {{.Reason}}</div>{{end}}</div>
{{else}}<p>No frame was captured.</p>{{end}}
{{end}}`))

// pathSVG draws a flow's receive path.
func pathSVG(r *correlate.Result, f *correlate.Flow) string {
	n := len(r.Uplinks)
	rows := n
	if rows < 1 {
		rows = 1
	}
	h := 40 + rows*60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="%d" viewBox="0 0 760 %d" role="img" aria-label="path of %s">`,
		h, h, template.HTMLEscapeString(f.Key.String()))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>`)
	box := func(x, y, w int, label, sub, fill string) {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="40" rx="6" fill="%s" stroke="#555"/>`, x, y, w, fill)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="14" font-family="sans-serif">%s</text>`, x+w/2, y+17, template.HTMLEscapeString(label))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" font-family="sans-serif" fill="#444">%s</text>`, x+w/2, y+32, template.HTMLEscapeString(sub))
	}
	mid := h / 2
	poX, rxX := 330, 590
	box(poX, mid-20, 140, "PortOutput", fmt.Sprintf("%d copies", f.Path.PortOutput), "#eef")
	box(rxX, mid-20, 140, "VnicRx", fmt.Sprintf("%d copies", f.Path.VnicRx), "#efe")
	team := r.Port.TeamUplink
	for i := 0; i < n; i++ {
		y := 20 + i*60
		u := r.Uplinks[i]
		sub := "uplink"
		if u == team {
			sub = "team uplink"
		}
		arrived := f.Path.Arrived[i]
		box(20, y, 130, u, sub, "#f6f6f6")
		color := "#555"
		if arrived == 0 {
			color = "#bbb"
		}
		fmt.Fprintf(&b, `<line x1="150" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" marker-end="url(#arrow)"/>`, y+20, poX, mid, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" font-family="sans-serif">%d arrived</text>`, 170, y+14+(mid-y-20)/4, arrived)
		if fl := f.Path.Filtered[i]; fl > 0 {
			// the dropped copies: from PortOutput towards VnicRx, cut off
			yy := mid + 30 + i*14
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c00" stroke-width="2" stroke-dasharray="5,4"/>`, poX+140, mid+10, 540, yy)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="16" fill="#c00" font-family="sans-serif">✕</text>`, 540, yy+5)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#c00" font-family="sans-serif">%d from %s dropped by reverse teaming</text>`, 480, yy+18, fl, template.HTMLEscapeString(u))
		}
	}
	if n == 0 {
		fmt.Fprintf(&b, `<text x="20" y="%d" font-size="12" font-family="sans-serif" fill="#777">uplinks not captured</text>`, mid)
	}
	color := "#555"
	if f.Path.VnicRx == 0 {
		color = "#bbb"
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" marker-end="url(#arrow)"/>`, poX+140, mid-8, rxX, mid-8, color)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" font-family="sans-serif">%d delivered</text>`, poX+150, mid-14, f.Path.VnicRx)
	b.WriteString(`</svg>`)
	return b.String()
}
