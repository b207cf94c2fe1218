package report

import (
	"fmt"
	"strings"
)

// Markdown renders the report: the headline table (each cell: req/s, p99,
// CPU per request, peak RSS) and the idle-connection table.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", r.Title)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	if len(r.Rows) > 0 {
		b.WriteString("Each cell: req/s, p99 latency, proxy CPU per request, proxy peak RSS.\n\n")
		header(&b, "scenario", r.Targets)
		for _, row := range r.Rows {
			cells := make([]string, len(row.Cells))
			for i, c := range row.Cells {
				cells[i] = c.markdown()
			}
			line(&b, row.Scenario, cells)
		}
		b.WriteString("\n")
	}
	if len(r.Idle) > 0 {
		b.WriteString("Idle connections: RSS each added (KiB per connection), RSS before → with them.\n\n")
		cols := r.idleColumns()
		names := make([]string, len(cols))
		for j, i := range cols {
			names[j] = r.Targets[i]
		}
		header(&b, "idle", names)
		for _, row := range r.Idle {
			cells := make([]string, len(cols))
			for j, i := range cols {
				cells[j] = row.Cells[i].markdown()
			}
			line(&b, row.Scenario, cells)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func header(b *strings.Builder, first string, targets []string) {
	line(b, first, targets)
	b.WriteString("|---")
	for range targets {
		b.WriteString("|---")
	}
	b.WriteString("|\n")
}

func line(b *strings.Builder, first string, cells []string) {
	b.WriteString("| " + first)
	for _, c := range cells {
		b.WriteString(" | " + strings.ReplaceAll(c, "|", `\|`))
	}
	b.WriteString(" |\n")
}

func (c Cell) markdown() string {
	switch {
	case !c.Ran:
		return "—"
	case c.Err != "":
		return "failed: " + firstLine(c.Err)
	}
	parts := []string{rate(c.RPS), "p99 " + latency(c.P99)}
	if c.CPU > 0 {
		parts = append(parts, micros(c.CPU))
	}
	if c.PeakRSS > 0 {
		parts = append(parts, mib(c.PeakRSS))
	}
	s := strings.Join(parts, ", ")
	if c.Errors > 0 {
		s += fmt.Sprintf(" (%d errors)", c.Errors)
	}
	return s
}

func (c IdleCell) markdown() string {
	switch {
	case !c.Ran:
		return "—"
	case c.Conns == 0:
		return "failed: " + firstLine(c.Err)
	}
	s := fmt.Sprintf("**%.1f KiB**/conn (%s → %s, %d conns)", c.PerConn(), mib(c.Base), mib(c.Total), c.Conns)
	if c.Err != "" {
		s += "; stopped early: " + firstLine(c.Err)
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
