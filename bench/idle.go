package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/expressgateway/expressgateway/bench/load"
	"github.com/expressgateway/expressgateway/bench/proc"
	"github.com/expressgateway/expressgateway/bench/report"
)

// perSource is how many idle connections share one loopback source
// address: below the gateway's default per-IP connection cap (1024), and
// far below the ephemeral port range.
const perSource = 500

// measureIdle opens e.idleConns idle connections per protocol to each
// proxy (started afresh), and reports the RSS they added.
func measureIdle(ctx context.Context, e *env, o options, ts []target) []report.IdleRow {
	h2 := struct {
		proto, title string
		front        func(*served) string
	}{load.IdleH2C, "H2 (h2c)", func(s *served) string { return s.h2c }}
	if o.idleTLS {
		h2.proto, h2.title, h2.front = load.IdleH2, "H2 (TLS)", tlsFront
	}
	protos := []struct {
		proto, title string
		front        func(*served) string
	}{{load.IdleH1, "H1 keep-alive", h1Front}, h2, {load.IdleWS, "WebSocket", h1Front}}
	var rows []report.IdleRow
	for _, p := range protos {
		row := report.IdleRow{Scenario: fmt.Sprintf("%s idle %s connections, one 100 B GET each", thousands(e.idleConns), p.title)}
		if p.proto == load.IdleWS {
			row.Scenario = fmt.Sprintf("%s idle WebSocket tunnels (H1 upgrade, no message)", thousands(e.wsIdleConns()))
		}
		for _, t := range ts {
			var c report.IdleCell
			if t.key != "direct" && ctx.Err() == nil {
				c = idleOne(ctx, e, t, p.proto, p.front)
			}
			fmt.Fprintf(os.Stderr, "idle %-4s %-16s %s\n", p.proto, t.name, idleSummary(c))
			row.Cells = append(row.Cells, c)
		}
		rows = append(rows, row)
	}
	return rows
}

func idleOne(ctx context.Context, e *env, t target, proto string, front func(*served) string) report.IdleCell {
	srv, err := t.start(e, t.bin, scenario{key: idleScenario, upstream: "h1"})
	if err != nil {
		return report.IdleCell{Ran: true, Err: fmt.Sprintf("start: %v", err)}
	}
	defer srv.stop()
	addr := front(srv)
	if addr == "" {
		return report.IdleCell{}
	}
	per := perSource
	path := smallPath
	if proto == load.IdleWS {
		per, path = wsPerSource, wsPath
	}
	n := e.idleConns
	if proto == load.IdleWS {
		n = e.wsIdleConns()
	}
	sources := loopbackSources(n, per)
	tlsConf := e.certs.client.Clone()
	tlsConf.NextProtos = []string{"h2"}
	// Warm the code paths and the upstream pool so the baseline holds them.
	warm, err := load.OpenIdle(ctx, proto, addr, path, 64, sources[:1], tlsConf)
	warm.Close()
	if err != nil {
		return report.IdleCell{Ran: true, Err: fmt.Sprintf("warm-up: %v", err)}
	}
	time.Sleep(500 * time.Millisecond)
	pids := srv.proc.PIDs()
	c := report.IdleCell{Ran: true, Base: proc.RSS(pids)}
	// Bounded well inside every proxy's idle timeout (the gateway's
	// 60 s, nginx's 75 s) and the gateway's 30 s H2 keep-alive PING.
	octx, cancel := context.WithTimeout(ctx, 25*time.Second)
	idle, err := load.OpenIdle(octx, proto, addr, path, n, sources, tlsConf)
	cancel()
	defer idle.Close()
	if err != nil {
		c.Err = err.Error()
	}
	time.Sleep(2 * time.Second) // let the proxy settle (and a Go GC cycle pass)
	c.Conns, c.Total = idle.Len(), proc.RSS(pids)
	if xerr := srv.proc.Exited(); xerr != nil {
		return report.IdleCell{Ran: true, Err: fmt.Sprintf("%v while holding idle connections (see logs/ in the results folder)", xerr)}
	}
	return c
}

func idleSummary(c report.IdleCell) string {
	if !c.Ran {
		return "—"
	}
	s := fmt.Sprintf("%d conns, RSS %d → %d MiB, %.1f KiB/conn", c.Conns, c.Base>>20, c.Total>>20, c.PerConn())
	if c.Err != "" {
		s += "; " + c.Err
	}
	return s
}

// thousands writes n with comma separators: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// wsIdleConns is how many idle tunnels the run holds: -idle-conns, unless
// this process's descriptors cannot hold them, since each tunnel is two
// here (the client's socket and the in-process backend's, which a tunnel
// never shares as keep-alive connections share a pool).
func (e *env) wsIdleConns() int {
	return min(e.idleConns, (e.nofile-2048)/2)
}
