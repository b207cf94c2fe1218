package load

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
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
	msg := bytes.Repeat([]byte("x"), size)
	calls := make([]func(context.Context) error, 0, len(tunnels))
	for _, c := range tunnels {
		calls = append(calls, func(ctx context.Context) error {
			if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
				return err
			}
			_, got, err := c.Read(ctx)
			if err == nil && len(got) != size {
				err = fmt.Errorf("echo of %d bytes", len(got))
			}
			return err
		})
	}
	r := closedLoop(ctx, dur, calls, true)
	if r.Requests == 0 {
		return r, fmt.Errorf("ws %s: no echo came back (%d errors)", url, r.Errors)
	}
	return r, nil
}
