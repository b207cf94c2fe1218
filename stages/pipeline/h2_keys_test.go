package pipeline

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/expressgateway/expressgateway/conf"
)

// nextPing reads frames until the gateway's PING (not an ACK) arrives.
func (p *h2Peer) nextPing() *http2.PingFrame {
	p.t.Helper()
	return p.next(func(f http2.Frame) bool {
		pf, ok := f.(*http2.PingFrame)
		if ok && pf.IsAck() {
			p.t.Fatalf("unexpected PING ACK %q", pf.Data)
		}
		return ok
	}).(*http2.PingFrame)
}

func TestH2_KeepAlive_UnansweredPingClosesTheConnection(t *testing.T) {
	addr := guardGateway(t, "keep_alive_interval_ms = 100\nkeep_alive_timeout_ms = 200")
	d := counterDelta("h2_keepalive_timeout")
	p := dialH2(t, addr)
	p.nextPing() // never answered
	p.wantGoAway(http2.ErrCodeNo)
	p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := p.fr.ReadFrame(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("connection ended with %v, want a close", err)
			}
			break
		}
	}
	if d() == 0 {
		t.Fatal("security_h2_keepalive_timeout_total did not move")
	}
}

func TestH2_KeepAlive_AnsweringClientStaysOpen(t *testing.T) {
	addr := guardGateway(t, "keep_alive_interval_ms = 100\nkeep_alive_timeout_ms = 200")
	p := dialH2(t, addr)
	// Five PINGs answered span several times the timeout: a live client
	// is never closed.
	for range 5 {
		pf := p.next(func(f http2.Frame) bool {
			if g, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("GOAWAY %v for a client that answers PINGs", g.ErrCode)
			}
			_, ok := f.(*http2.PingFrame)
			return ok
		}).(*http2.PingFrame)
		p.fr.WritePing(true, pf.Data)
	}
	p.get(1, "/")
	p.wantStatus(1, "200")
}

func TestH2_MaxLocalErrorResetStreams_GoAwayPastTheThreshold(t *testing.T) {
	// The glitch score is out of the way: this key alone must close.
	addr := guardGateway(t, "max_local_error_reset_streams = 3\nglitch_threshold = 100000")
	d := counterDelta("h2_local_error_resets")
	p := dialH2(t, addr)
	for i := range 3 {
		p.get(uint32(2*i+1), "/", "X-Upper", "1")
		p.wantRST(uint32(2*i+1), http2.ErrCodeProtocol)
	}
	p.get(7, "/", "X-Upper", "1")
	p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	if d() == 0 {
		t.Fatal("security_h2_local_error_resets_total did not move")
	}
}

func TestH2_MaxPendingAcceptResetStreams_IsTheRapidResetThreshold(t *testing.T) {
	// 30 resets are under the default threshold (100) and over this key.
	addr := guardGateway(t, "max_pending_accept_reset_streams = 20")
	d := counterDelta("h2_rapid_reset")
	p := dialH2(t, addr)
	for i := range 30 {
		id := uint32(2*i + 1)
		p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block("/slow"), EndStream: true, EndHeaders: true})
		p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
	if d() == 0 {
		t.Fatal("security_h2_rapid_reset_total did not move")
	}
}

// The h2_security keys are live: a reload applies them to new connections.
func TestReload_H2SecurityKeysApplyToNewConnections(t *testing.T) {
	be := okBackend(t)
	mk := func(addr, security string) string {
		return strings.Replace(h1Listener("web", "[listeners.h2_security]\nglitch_threshold = 100000\n"+security+`
[[listeners.backends]]
address = "`+be+`"`), "127.0.0.1:0", addr, 1)
	}
	g := startGateway(t, mk("127.0.0.1:0", "keep_alive_interval_ms = 0"))
	addr := g.Addr("web").String()
	p := dialH2(t, addr)
	for i := range 2 {
		p.get(uint32(2*i+1), "/", "X-Upper", "1")
		p.wantRST(uint32(2*i+1), http2.ErrCodeProtocol)
	}
	p.get(5, "/")
	p.wantStatus(5, "200")

	path := filepath.Join(t.TempDir(), "next.toml")
	os.WriteFile(path, []byte(mk(addr, "keep_alive_interval_ms = 100\nmax_local_error_reset_streams = 1")), 0o600)
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listeners[0].Address = g.cfg.Listeners[0].Address // the running listener's identity
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	p = dialH2(t, addr)
	p.nextPing()
	p.get(1, "/", "X-Upper", "1")
	p.get(3, "/", "X-Upper", "1")
	p.wantGoAway(http2.ErrCodeEnhanceYourCalm)
}
