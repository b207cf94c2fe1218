package load

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// WS drives url (ws://…) with conns WebSocket tunnels, each sending a
// size-byte text message and waiting for its echo, back to back, for dur.
// Tunnel i dials from sources[i%len(sources)], so a per-IP tunnel cap is
// not what the run measures. A message counts as a request.
func WS(ctx context.Context, url string, sources []netip.Addr, conns, size int, dur time.Duration) (Result, error) {
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	defer ocancel()
	tunnels := make([]*websocket.Conn, 0, conns)
	defer func() {
		for _, c := range tunnels {
			c.CloseNow()
		}
	}()
	for i := range conns {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(sources[i%len(sources)], 0))}
		tr := &http.Transport{DialContext: d.DialContext}
		c, _, err := websocket.Dial(octx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			return Result{}, fmt.Errorf("ws tunnel %d: %w", i, err)
		}
		tunnels = append(tunnels, c)
	}
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var (
		ok, bad atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		wg      sync.WaitGroup
	)
	msg := bytes.Repeat([]byte("x"), size)
	start := time.Now()
	for _, c := range tunnels {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<10)
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					if ctx.Err() == nil {
						bad.Add(1)
					}
					break
				}
				if _, got, err := c.Read(ctx); err != nil || len(got) != size {
					if ctx.Err() == nil {
						bad.Add(1)
					}
					break
				}
				local = append(local, time.Since(t0))
				ok.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := Result{Requests: ok.Load(), Errors: bad.Load(), Elapsed: time.Since(start)}
	if r.Requests == 0 {
		return r, fmt.Errorf("ws %s: no echo came back (%d errors)", url, r.Errors)
	}
	r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	r.fromLatencies(lats)
	return r, nil
}
