package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Idle protocols: each connection carries one GET, then stays open with
// no traffic.
const (
	IdleH1  = "h1"  // HTTP/1.1 keep-alive
	IdleH2C = "h2c" // HTTP/2 with prior knowledge, cleartext
	IdleH2  = "h2"  // HTTP/2 over TLS (ALPN h2)
	IdleWS  = "ws"  // a WebSocket tunnel over HTTP/1.1 (the GET is the upgrade)
)

// Idle is a set of open idle connections.
type Idle struct{ conns []net.Conn }

// Len is the number of connections open.
func (i *Idle) Len() int { return len(i.conns) }

// Close closes every connection.
func (i *Idle) Close() {
	for _, c := range i.conns {
		c.Close()
	}
	i.conns = nil
}

// OpenIdle opens n connections to addr over proto, the i-th from local
// address sources[i%len(sources)] (several loopback sources spread a
// per-source-IP cap and the ephemeral ports), sends one GET for path on
// each and reads the response, then leaves it idle. tlsConf is used for
// IdleH2. It stops at the first failure or when ctx ends, returning the
// connections opened so far with the error.
func OpenIdle(ctx context.Context, proto, addr, path string, n int, sources []netip.Addr, tlsConf *tls.Config) (*Idle, error) {
	if len(sources) == 0 {
		return nil, errors.New("idle: no source addresses")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := &Idle{conns: make([]net.Conn, 0, n)}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan int)
	)
	const workers = 32 // enough to open 10,000 in seconds, few enough not to look like a flood
	for range workers {
		wg.Go(func() {
			for i := range next {
				c, err := openOne(ctx, proto, addr, path, sources[i%len(sources)], tlsConf)
				if err != nil {
					cancel(fmt.Errorf("idle %s connection %d from %v: %w", proto, i, sources[i%len(sources)], err))
					continue
				}
				mu.Lock()
				idle.conns = append(idle.conns, c)
				mu.Unlock()
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return idle, context.Cause(ctx)
}

func openOne(ctx context.Context, proto, addr, path string, src netip.Addr, tlsConf *tls.Config) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	switch proto {
	case IdleH1:
		err = h1Once(c, addr, path)
	case IdleH2C:
		err = h2Once(c, "http", addr, path)
	case IdleWS:
		err = wsUpgrade(c, addr, path)
	case IdleH2:
		tc := tls.Client(c, tlsConf)
		if err = tc.HandshakeContext(ctx); err == nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
			err = fmt.Errorf("ALPN %q, want h2", tc.ConnectionState().NegotiatedProtocol)
		}
		if err == nil {
			err = h2Once(tc, "https", addr, path)
		}
		c = tc
	default:
		err = fmt.Errorf("unknown idle protocol %q", proto)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// h1Once sends one keep-alive GET and reads the whole response.
func h1Once(c net.Conn, host, path string) error {
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nUser-Agent: egbench\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		return fmt.Errorf("status %d, close %v", resp.StatusCode, resp.Close)
	}
	return nil
}

// h2Once opens an HTTP/2 connection (preface and SETTINGS), sends one GET
// on stream 1, and reads frames until its response ends, acknowledging
// the server's SETTINGS and PINGs as a client must.
func h2Once(c net.Conn, scheme, authority, path string) error {
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", scheme}, {":authority", authority}, {":path", path}, {"user-agent", "egbench"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return err
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := fr.WritePing(true, f.Data); err != nil {
					return err
				}
			}
		case *http2.GoAwayFrame:
			return fmt.Errorf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			return fmt.Errorf("RST_STREAM %v", f.ErrCode)
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 && f.PseudoValue("status") != "" && f.PseudoValue("status") != "200" {
				return fmt.Errorf("status %s", f.PseudoValue("status"))
			}
			if f.StreamID == 1 && f.StreamEnded() {
				return nil
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() {
				return nil
			}
		}
	}
}

// wsUpgrade opens a WebSocket on c with a hand-written handshake and
// leaves the tunnel idle.
func wsUpgrade(c net.Conn, addr, path string) error {
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr)
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: status %d", resp.StatusCode)
	}
	if br.Buffered() > 0 {
		return errors.New("upgrade: bytes after the 101 on an idle tunnel")
	}
	return nil
}
