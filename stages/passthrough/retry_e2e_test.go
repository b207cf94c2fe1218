package passthrough

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/quiclb"
)

var poolTokenKey = quiclb.TokenKey{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01,
	0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x12}

// clientIP is the clients' address in the mint_retry tests: not the
// gateway's (127.0.0.1, the address backends see), so a token that named
// the client where the server's view belongs would fail.
var clientIP = net.IPv4(127, 0, 0, 2)

// streams opens n streams on c at once and checks that each is answered
// by want.
func streams(t *testing.T, c *quic.Conn, n int, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := c.OpenStreamSync(ctx)
			if err != nil {
				errs <- err
				return
			}
			s.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(s, "who?")
			s.Close()
			b, err := io.ReadAll(s)
			if err != nil {
				errs <- err
				return
			}
			if string(b) != want {
				errs <- errors.New("answered by " + string(b) + ", not " + want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The default deployment: the backends do Retry (VerifySourceAddress),
// sharing one TokenGeneratorKey, and the passthrough relays the Retry and
// the Initial that follows like any other packet. With QUIC-LB backends
// the Retry's SCID routes the next Initial statelessly; with random
// Connection IDs the flow (the 4-tuple) does. Each client saw one Retry,
// completed the handshake and ran 16 streams.
func TestE2E_BackendsDoRetry(t *testing.T) {
	key := poolTokenKey.QUIC()
	for _, lb := range []bool{true, false} {
		name := map[bool]string{true: "quiclb", false: "random_cids"}[lb]
		t.Run(name, func(t *testing.T) {
			ca := newCA()
			var bs []*backend
			var qs []QUICLB
			if lb {
				cfg := quiclb.Config{ID: 4, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: testKey}
				q := QUICLB{Config: cfg, ServerIDs: map[string]quiclb.ServerID{}}
				for i, n := range []string{"r-a", "r-b"} {
					sid := mustSID(t, 0, byte(i+1))
					gen, err := quiclb.NewGenerator(cfg, sid)
					if err != nil {
						t.Fatal(err)
					}
					b := startBackendWith(t, ca, n, backendConfig{gen: gen, key: key, retry: true})
					q.ServerIDs[b.addr] = sid
					bs = append(bs, b)
				}
				qs = []QUICLB{q}
			} else {
				for _, n := range []string{"r-a", "r-b"} {
					bs = append(bs, startBackendWith(t, ca, n, backendConfig{key: key, retry: true}))
				}
			}
			o := defaultOpts(t.Name(), testPool(t, bs...))
			o.QUICLB = qs
			g := startGateway(t, "127.0.0.1:0", o)
			for range 4 {
				c := dial(t, ca, g.l.Addr())
				// One Retry per tokenless Initial datagram: a ClientHello
				// with a post-quantum key share fills two.
				if n := c.retries.Load(); n < 1 || n > 2 {
					t.Fatalf("the client saw %d Retry packets, want the backend's", n)
				}
				streams(t, c.conn, 16, c.peerName())
			}
			if n := counter(o.Name, `passthrough_retry_sent_total{}`); n != 0 {
				t.Fatalf("the gateway sent %d Retry packets without mint_retry", n)
			}
		})
	}
}

// mint_retry: the gateway answers the client's first Initial with its own
// Retry, in quic-go's token format under the pool's key, and a quic-go
// backend holding that key (and doing no Retry of its own) takes the
// token's Connection IDs into its transport parameters: the client
// completes the handshake and runs 16 streams. A second connection with
// the NEW_TOKEN the backend gave the first goes through without a Retry.
//
// On the SPP backhaul the backend sees the client's own address, and the
// token names it.
func TestE2E_MintRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lb, spp bool
	}{{"quiclb", true, false}, {"random_cids", false, false}, {"spp", true, true}} {
		lb := tc.lb
		t.Run(tc.name, func(t *testing.T) {
			ca := newCA()
			var bs []*backend
			var qs []QUICLB
			bc := backendConfig{key: poolTokenKey.QUIC()}
			if tc.spp {
				bc.opts = append(bc.opts, withSPP)
			}
			if lb {
				cfg := quiclb.Config{ID: 5, ServerIDLen: 3, NonceLen: 6, Encoding: quiclb.FourPass, Key: testKey}
				var q QUICLB
				bs, q = quicLBBackendsWith(t, ca, cfg, "m-", 2, bc)
				qs = []QUICLB{q}
			} else {
				for _, n := range []string{"m-a", "m-b"} {
					bs = append(bs, startBackendWith(t, ca, n, bc))
				}
			}
			o := defaultOpts(t.Name(), testPool(t, bs...))
			o.QUICLB = qs
			o.Retry = &RetryOptions{Key: poolTokenKey}
			if tc.spp {
				o.Backhaul = BackhaulSPP
			}
			g := startGateway(t, "127.0.0.1:0", o)
			tokens := quic.NewLRUTokenStore(4, 4)
			var retried, withToken int
			var seen int64
			for i := range 4 {
				c, err := dialWith(t, ca, g.l.Addr(), tokens, clientIP)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				streams(t, c.conn, 16, c.peerName())
				switch n := c.retries.Load(); {
				case n == 0:
					withToken++
				case n <= 2: // one per tokenless Initial datagram
					retried++
					seen += n
				default:
					t.Fatalf("connection %d saw %d Retry packets", i, n)
				}
			}
			if retried == 0 || withToken == 0 {
				t.Fatalf("%d connections went through a Retry and %d through a NEW_TOKEN; want both", retried, withToken)
			}
			if sent := counter(o.Name, `passthrough_retry_sent_total{}`); sent != uint64(seen) {
				t.Fatalf("the gateway sent %d Retry packets; the clients saw %d", sent, seen)
			}
			if lb && counter(o.Name, `passthrough_datagrams_total{route="cid"}`) == 0 {
				t.Fatal("the Initials after the Retry were not routed by the Retry's QUIC-LB SCID")
			}
			for _, r := range rejectNames {
				if n := counter(o.Name, `passthrough_retry_tokens_rejected_total{reason="`+r+`"}`); n != 0 {
					t.Fatalf("%d tokens rejected as %s", n, r)
				}
			}
		})
	}
}

// A backend with another key cannot read the gateway's token: it takes
// the client's second DCID for the original one and names no Retry SCID,
// and the client aborts the handshake (a transport parameter error). This
// is the failure the shared key exists to prevent, and the check that the
// token format still matches quic-go's.
func TestE2E_MintRetryBackendWithOtherKeyFails(t *testing.T) {
	ca := newCA()
	other := poolTokenKey
	other[0] ^= 0xff
	b := startBackendWith(t, ca, "wrong-key", backendConfig{key: other.QUIC()})
	pool := testPool(t, b)
	o := defaultOpts(t.Name(), pool)
	o.Retry = &RetryOptions{Key: poolTokenKey}
	g := startGateway(t, "127.0.0.1:0", o)
	c, err := dialWith(t, ca, g.l.Addr(), nil, clientIP)
	if err == nil {
		c.conn.CloseWithError(0, "")
		t.Fatal("the handshake completed with a backend that cannot read the token")
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != quic.TransportParameterError {
		t.Fatalf("dial failed with %v, want the client's transport parameter error", err)
	}
	if counter(o.Name, `passthrough_retry_sent_total{}`) < 1 {
		t.Fatal("the gateway sent no Retry")
	}
}

// retry_backend_dual_stack: a backend on a dual-stack socket sees the
// gateway's IPv4 address as ::ffff:127.0.0.1 and refuses a token naming
// 127.0.0.1; with the option the token says what it sees.
func TestE2E_MintRetryDualStackBackend(t *testing.T) {
	ca := newCA()
	b := startBackendWith(t, ca, "dual", backendConfig{key: poolTokenKey.QUIC(), dualStack: true})
	pool := testPool(t, b)

	o := defaultOpts(t.Name()+"-mapped", pool)
	o.Retry = &RetryOptions{Key: poolTokenKey, BackendDualStack: true}
	g := startGateway(t, "127.0.0.1:0", o)
	c := dial(t, ca, g.l.Addr())
	streams(t, c.conn, 16, "dual")

	o4 := defaultOpts(t.Name()+"-ipv4", pool)
	o4.Retry = &RetryOptions{Key: poolTokenKey}
	g4 := startGateway(t, "127.0.0.1:0", o4)
	c4, err := dialWith(t, ca, g4.l.Addr(), nil, clientIP)
	if err == nil {
		c4.conn.CloseWithError(0, "")
		t.Fatal("a dual-stack backend took a token naming the IPv4 form")
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != quic.InvalidToken {
		t.Fatalf("dial failed with %v, want the backend's INVALID_TOKEN", err)
	}
}

// NewTokens (retry_new_tokens): a client holding a backend's NEW_TOKEN
// is sent a Retry all the same, and still connects.
func TestE2E_MintRetryNewTokensRetried(t *testing.T) {
	ca := newCA()
	b := startBackendWith(t, ca, "nt", backendConfig{key: poolTokenKey.QUIC()})
	o := defaultOpts(t.Name(), testPool(t, b))
	o.Retry = &RetryOptions{Key: poolTokenKey, NewTokens: true}
	g := startGateway(t, "127.0.0.1:0", o)
	tokens := quic.NewLRUTokenStore(4, 4)
	first, err := dialWith(t, ca, g.l.Addr(), tokens, clientIP)
	if err != nil {
		t.Fatal(err)
	}
	streams(t, first.conn, 16, "nt")
	// The backend sends NEW_TOKEN once the handshake is confirmed: wait
	// until the store holds it (Pop takes it; put it back).
	waitFor(t, "the backend's NEW_TOKEN", func() bool {
		if tok := tokens.Pop("localhost"); tok != nil {
			tokens.Put("localhost", tok)
			return true
		}
		return false
	})
	for i := range 3 {
		c, err := dialWith(t, ca, g.l.Addr(), tokens, clientIP)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if c.retries.Load() == 0 {
			t.Fatalf("connection %d with a NEW_TOKEN went through without a Retry", i)
		}
		streams(t, c.conn, 4, "nt")
	}
}
