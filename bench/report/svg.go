package report

import (
	"fmt"
	"html"
	"strings"
)

// The chart: one panel per scenario, one bar row per target, and one
// column per metric (req/s, p99, CPU per request, peak RSS), each scaled
// to its largest value in the panel so the proxies compare at a glance.
const (
	svgWidth  = 1000
	labelW    = 130 // target names
	colW      = 215 // one metric column: bar and its value
	barMax    = 150 // longest bar
	barH      = 14
	rowH      = 18
	panelHead = 40 // scenario title and metric names
	panelGap  = 14
)

// colors per target column; direct is grey, the gateway the last colour.
var colors = []string{"#9e9e9e", "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1"}

type metric struct {
	name  string
	value func(Cell) float64
	text  func(Cell) string
}

var metrics = []metric{
	{"req/s (higher is better)", func(c Cell) float64 { return c.RPS }, func(c Cell) string { return rate(c.RPS) }},
	{"p99 latency (lower is better)", func(c Cell) float64 { return float64(c.P99) }, func(c Cell) string { return latency(c.P99) }},
	{"CPU per request (lower is better)", func(c Cell) float64 { return float64(c.CPU) }, func(c Cell) string { return micros(c.CPU) }},
	{"peak RSS (lower is better)", func(c Cell) float64 { return float64(c.PeakRSS) }, func(c Cell) string { return mib(c.PeakRSS) }},
}

// SVG renders the report as a bar chart.
func (r *Report) SVG() []byte {
	var b strings.Builder
	y := 30
	body := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	body(`<text x="10" y="%d" font-size="16" font-weight="bold">%s</text>`+"\n", y, esc(r.Title))
	y += 12
	for _, row := range r.Rows {
		y += panelGap
		body(`<text x="10" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", y+14, esc(strings.ReplaceAll(row.Scenario, "`", "")))
		for m, mt := range metrics {
			body(`<text x="%d" y="%d" font-size="11" fill="#555">%s</text>`+"\n", labelW+m*colW, y+32, esc(mt.name))
		}
		y += panelHead
		for m, mt := range metrics {
			top := 0.0
			for _, c := range row.Cells {
				if c.Ran && c.Err == "" {
					top = max(top, mt.value(c))
				}
			}
			for i, c := range row.Cells {
				cy := y + i*rowH
				x := labelW + m*colW
				switch {
				case !c.Ran:
					body(`<text x="%d" y="%d" font-size="11" fill="#999">—</text>`+"\n", x, cy+11)
				case c.Err != "":
					body(`<text x="%d" y="%d" font-size="11" fill="#c00">failed</text>`+"\n", x, cy+11)
				case mt.value(c) == 0:
					body(`<text x="%d" y="%d" font-size="11" fill="#999">not measured</text>`+"\n", x, cy+11)
				default:
					w := max(int(float64(barMax)*mt.value(c)/top), 1)
					body(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, cy, w, barH, color(i))
					body(`<text x="%d" y="%d" font-size="11">%s</text>`+"\n", x+w+4, cy+11, esc(mt.text(c)))
				}
			}
		}
		y = targetLabels(&b, r.Targets, nil, y)
	}
	if len(r.Idle) > 0 {
		y += panelGap
		body(`<text x="10" y="%d" font-size="13" font-weight="bold">Idle connections: RSS per connection (lower is better)</text>`+"\n", y+14)
		y += panelHead - 16
	}
	cols := r.idleColumns()
	for _, row := range r.Idle {
		body(`<text x="10" y="%d" font-size="12">%s</text>`+"\n", y+12, esc(row.Scenario))
		y += rowH
		top := 0.0
		for _, c := range row.Cells {
			if c.Ran && c.Conns > 0 {
				top = max(top, c.PerConn())
			}
		}
		names := make([]string, len(cols))
		for j, i := range cols {
			c := row.Cells[i]
			names[j] = r.Targets[i]
			cy := y + j*rowH
			switch {
			case !c.Ran:
				body(`<text x="%d" y="%d" font-size="11" fill="#999">—</text>`+"\n", labelW, cy+11)
			case c.Conns == 0:
				body(`<text x="%d" y="%d" font-size="11" fill="#c00">failed</text>`+"\n", labelW, cy+11)
			default:
				w := max(int(float64(2*colW)*c.PerConn()/max(top, 1e-9)), 1)
				body(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", labelW, cy, w, barH, color(i))
				body(`<text x="%d" y="%d" font-size="11">%.1f KiB/conn (%s → %s, %d conns)</text>`+"\n", labelW+w+4, cy+11, c.PerConn(), mib(c.Base), mib(c.Total), c.Conns)
			}
		}
		y = targetLabels(&b, names, cols, y) + 4
	}
	y += 20
	return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">
<rect width="100%%" height="100%%" fill="white"/>
%s</svg>
`, svgWidth, y, svgWidth, y, b.String())
}

// targetLabels writes the target names of one panel's rows, coloured as
// their columns (cols[i] is the i-th name's column; nil: in order), and
// returns the y below them.
func targetLabels(b *strings.Builder, targets []string, cols []int, y int) int {
	for i, t := range targets {
		col := i
		if cols != nil {
			col = cols[i]
		}
		fmt.Fprintf(b, `<text x="10" y="%d" font-size="12" fill="%s">%s</text>`+"\n", y+i*rowH+11, color(col), esc(t))
	}
	return y + len(targets)*rowH
}

func color(i int) string { return colors[i%len(colors)] }

func esc(s string) string { return html.EscapeString(s) }
