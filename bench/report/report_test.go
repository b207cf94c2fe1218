package report

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func sample() *Report {
	return &Report{
		Title:   "bench",
		Notes:   []string{"access logs off"},
		Targets: []string{"direct", "nginx 1.22", "expressgateway"},
		Rows: []Row{
			{Scenario: "H1→H1, `wrk -t1 -c64`", Cells: []Cell{
				{Ran: true, RPS: 47_000, P99: 900 * time.Microsecond},
				{Ran: true, RPS: 27_900, P99: 2100 * time.Microsecond, CPU: 25500 * time.Nanosecond, PeakRSS: 21 << 20},
				{Ran: true, RPS: 15_100, P99: 150 * time.Millisecond, CPU: 64 * time.Microsecond, PeakRSS: 26 << 20, Errors: 3},
			}},
			{Scenario: "H3→H1", Cells: []Cell{
				{Ran: true, RPS: 900, P99: 3 * time.Millisecond},
				{},
				{Ran: true, Err: "start: no\nmore"},
			}},
		},
		Idle: []IdleRow{{Scenario: "10000 idle H1", Cells: []IdleCell{
			{},
			{Ran: true, Conns: 10_000, Base: 20 << 20, Total: 20<<20 + 10_000*1024},
			{Ran: true, Conns: 5_000, Base: 20 << 20, Total: 20<<20 + 5_000*35*1024, Err: "context deadline exceeded"},
		}}},
	}
}

func TestMarkdown_OneRowPerScenarioOneColumnPerTarget(t *testing.T) {
	md := sample().Markdown()
	for _, want := range []string{
		"## bench\n",
		"- access logs off\n",
		"| scenario | direct | nginx 1.22 | expressgateway |\n|---|---|---|---|\n",
		"| H1→H1, `wrk -t1 -c64` | 47.0k, p99 900 µs | 27.9k, p99 2.1 ms, 25.5 µs, 21 MiB | 15.1k, p99 150 ms, 64.0 µs, 26 MiB (3 errors) |\n",
		"| H3→H1 | 900, p99 3.0 ms | — | failed: start: no |\n",
		// The direct backend holds no proxy memory: no idle column.
		"| idle | nginx 1.22 | expressgateway |\n|---|---|---|\n",
		"| 10000 idle H1 | **1.0 KiB**/conn (20 MiB → 30 MiB, 10000 conns) | **35.0 KiB**/conn (20 MiB → 191 MiB, 5000 conns); stopped early: context deadline exceeded |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
}

func TestSVG_IsWellFormedWithOneBarPerMeasuredFigure(t *testing.T) {
	svg := sample().SVG()
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	rects := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
			rects++
		}
	}
	// Background, then H1: direct 2 (req/s, p99), nginx 4, gateway 4;
	// H3: direct 2; idle: nginx and the gateway's partial count.
	if want := 1 + 2 + 4 + 4 + 2 + 2; rects != want {
		t.Fatalf("%d rects, want %d\n%s", rects, want, svg)
	}
}
