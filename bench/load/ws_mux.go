//lint:file-ignore SA1019 net/http refuses a ":protocol" header before its HTTP/2 client sees it; x/net's deprecated client is the one that sends extended CONNECT

package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/expressgateway/expressgateway/frames/ws"
)

// ErrNoExtendedConnect says the target does not offer WebSocket over
// HTTP/2 or HTTP/3 (it did not announce SETTINGS_ENABLE_CONNECT_PROTOCOL).
var ErrNoExtendedConnect = errors.New("target does not accept extended CONNECT")

// muxStreamsPerConn is how many tunnels share one HTTP/2 or HTTP/3
// connection: within the gateway's default concurrent-stream cap (100).
const muxStreamsPerConn = 100

// wsTunnel is one WebSocket's byte streams over a multiplexed front.
type wsTunnel struct {
	w     io.Writer
	r     *bufio.Reader
	close func()
}

// WSMux drives rawURL (https://host:port/path) with tunnels WebSocket
// tunnels opened by extended CONNECT over HTTP/2 (RFC 8441, proto "h2") or
// HTTP/3 (RFC 9220, proto "h3"), muxStreamsPerConn to a connection,
// perSource tunnels from each source address; each sends a size-byte text
// message and waits for its echo, back to back, for dur. A message counts
// as a request.
func WSMux(ctx context.Context, proto, rawURL string, tlsConf *tls.Config, sources []netip.Addr, perSource, tunnels, size int, dur time.Duration) (Result, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Result{}, err
	}
	octx, ocancel := context.WithTimeout(ctx, 60*time.Second)
	defer ocancel()
	open := make([]*wsTunnel, 0, tunnels)
	var closers []func()
	defer func() {
		for _, t := range open {
			t.close()
		}
		for _, c := range closers {
			c()
		}
	}()
	var dial func(i int) (*wsTunnel, error)
	switch proto {
	case "h2":
		trs := map[netip.Addr]*http2.Transport{}
		dial = func(i int) (*wsTunnel, error) {
			src := sources[(i/perSource)%len(sources)]
			tr := trs[src]
			if tr == nil {
				tr = h2From(src, tlsConf)
				trs[src] = tr
				closers = append(closers, tr.CloseIdleConnections)
			}
			return h2Tunnel(octx, tr, u)
		}
	case "h3":
		var cc *http3.ClientConn
		dial = func(i int) (*wsTunnel, error) {
			if i%muxStreamsPerConn == 0 || i%perSource == 0 {
				c, closeConn, err := h3From(octx, sources[(i/perSource)%len(sources)], u.Host, tlsConf)
				if err != nil {
					return nil, err
				}
				closers = append(closers, closeConn)
				cc = c
			}
			return h3Tunnel(octx, cc, u)
		}
	default:
		return Result{}, fmt.Errorf("ws mux: protocol %q", proto)
	}
	for i := range tunnels {
		t, err := dial(i)
		if err != nil {
			return Result{}, fmt.Errorf("ws over %s, tunnel %d: %w", proto, i, err)
		}
		open = append(open, t)
	}

	msg := ws.AppendFrame(nil, 0x1, true, make([]byte, size), true)
	calls := make([]func(context.Context) error, 0, len(open))
	for _, t := range open {
		buf := make([]byte, size)
		var once sync.Once
		calls = append(calls, func(ctx context.Context) error {
			// The run's call context ending unblocks a read the peer never
			// answers.
			once.Do(func() { context.AfterFunc(ctx, t.close) })
			if _, err := t.w.Write(msg); err != nil {
				return err
			}
			op, _, p, err := ws.ReadFrame(t.r, buf, 1<<20)
			if err == nil && (op != 0x1 || len(p) != size) {
				err = fmt.Errorf("echo: opcode %d, %d bytes", op, len(p))
			}
			return err
		})
	}
	r := closedLoop(ctx, dur, calls, true)
	if r.Requests == 0 {
		return r, fmt.Errorf("ws over %s %s: no echo came back (%d errors)", proto, rawURL, r.Errors)
	}
	return r, nil
}

// h2From is an HTTP/2 client whose connections come from src.
func h2From(src netip.Addr, tlsConf *tls.Config) *http2.Transport {
	return &http2.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cfg := tlsConf.Clone()
			cfg.NextProtos = []string{"h2"}
			tc := tls.Client(nc, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				nc.Close()
				return nil, err
			}
			return tc, nil
		},
	}
}

// h2Tunnel opens one tunnel: an extended CONNECT whose request body is
// the client's side and whose response body the server's.
func h2Tunnel(ctx context.Context, tr *http2.Transport, u *url.URL) (*wsTunnel, error) {
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodConnect, u.String(), pr)
	if err != nil {
		return nil, err
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		pw.Close()
		if strings.Contains(err.Error(), "extended connect not supported") {
			return nil, ErrNoExtendedConnect
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		pw.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return &wsTunnel{w: pw, r: bufio.NewReader(resp.Body), close: func() { pw.Close(); resp.Body.Close() }}, nil
}

// h3From is an HTTP/3 client connection to host from src.
func h3From(ctx context.Context, src netip.Addr, host string, tlsConf *tls.Config) (*http3.ClientConn, func(), error) {
	raddr, err := net.ResolveUDPAddr("udp", host)
	if err != nil {
		return nil, nil, err
	}
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
	if err != nil {
		return nil, nil, err
	}
	qt := &quic.Transport{Conn: udp}
	cfg := tlsConf.Clone()
	cfg.NextProtos = []string{http3.NextProtoH3}
	qc, err := qt.Dial(ctx, raddr, cfg, &quic.Config{MaxIdleTimeout: time.Minute, KeepAlivePeriod: 10 * time.Second})
	if err != nil {
		qt.Close()
		return nil, nil, err
	}
	closeAll := func() { qc.CloseWithError(0, ""); qt.Close() }
	cc := (&http3.Transport{}).NewClientConn(qc)
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		closeAll()
		return nil, nil, ctx.Err()
	}
	if !cc.Settings().EnableExtendedConnect {
		closeAll()
		return nil, nil, ErrNoExtendedConnect
	}
	return cc, closeAll, nil
}

// h3Tunnel opens one tunnel on a request stream of cc.
func h3Tunnel(ctx context.Context, cc *http3.ClientConn, u *url.URL) (*wsTunnel, error) {
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Proto = "websocket"
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := str.SendRequestHeader(req); err != nil {
		return nil, err
	}
	resp, err := str.ReadResponse()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		str.CancelRead(0)
		str.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return &wsTunnel{w: str, r: bufio.NewReader(str), close: func() { str.CancelRead(0); str.Close() }}, nil
}
