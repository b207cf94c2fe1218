// Package report renders the bench command's results: one headline table
// (scenarios × targets) and the idle-connection memory table, as Markdown
// and as a hand-written SVG bar chart.
package report

import (
	"fmt"
	"time"
)

// Report is one bench run.
type Report struct {
	Title   string   // what ran, where and when
	Notes   []string // settings shared by every target, one line each
	Targets []string // column order, e.g. direct, nginx, haproxy, expressgateway
	Rows    []Row    // load scenarios
	Idle    []IdleRow
}

// Row is one load scenario: one Cell per target, in Targets order.
type Row struct {
	Scenario string // e.g. "H1→H1, 100 B GET, `wrk -t1 -c64`"
	Cells    []Cell
}

// Cell is one target's figures in one scenario. A zero CPU or PeakRSS
// means not measured (the in-process direct backend).
type Cell struct {
	Ran     bool   // false: the target does not serve the scenario
	Err     string // why the run failed, if it did
	RPS     float64
	P99     time.Duration
	CPU     time.Duration // CPU per request
	PeakRSS int64         // bytes
	Errors  int64         // failed requests
}

// IdleRow is one idle-connection scenario.
type IdleRow struct {
	Scenario string // e.g. "10,000 idle H1 keep-alive connections"
	Cells    []IdleCell
}

// IdleCell is the RSS one target held before and with the idle connections.
type IdleCell struct {
	Ran         bool
	Err         string
	Conns       int
	Base, Total int64 // RSS in bytes, before and with the connections
}

// PerConn is the RSS each idle connection added, in KiB.
func (c IdleCell) PerConn() float64 {
	if c.Conns == 0 {
		return 0
	}
	return float64(c.Total-c.Base) / float64(c.Conns) / 1024
}

// idleColumns are the targets that ran in some idle row (the direct
// backend has no proxy memory to measure).
func (r *Report) idleColumns() []int {
	var cols []int
	for i := range r.Targets {
		for _, row := range r.Idle {
			if i < len(row.Cells) && row.Cells[i].Ran {
				cols = append(cols, i)
				break
			}
		}
	}
	return cols
}

func rate(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func latency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func mib(b int64) string {
	v := float64(b) / (1 << 20)
	if v < 10 {
		return fmt.Sprintf("%.1f MiB", v)
	}
	return fmt.Sprintf("%.0f MiB", v)
}
