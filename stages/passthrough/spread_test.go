package passthrough

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/quiclb"
	"github.com/expressgateway/expressgateway/stages/route"
)

// 1,000 connections (200 under -short) over five weighted backends —
// three minting QUIC-LB Connection IDs, one per encoding, and two with
// random ones — spread by weight, and every stream of a connection lands
// on the backend whose certificate the client verified.
func TestE2E_ThousandConnectionsSpreadByWeight(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	ca := newCA()
	var bs []*backend
	var qs []QUICLB
	for i, cfg := range []quiclb.Config{
		{ID: 0, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: testKey},
		{ID: 1, ServerIDLen: 3, NonceLen: 6, Encoding: quiclb.FourPass, Key: testKey},
		{ID: 2, ServerIDLen: 1, NonceLen: 8, Encoding: quiclb.Plaintext},
	} {
		b, q := quicLBBackends(t, ca, cfg, "w"+string(rune('0'+i))+"-", 1)
		bs, qs = append(bs, b...), append(qs, q)
	}
	bs = append(bs, startBackend(t, ca, "plain-x", nil), startBackend(t, ca, "plain-y", nil))
	weights := []int{1, 2, 3, 1, 3}
	pc := conf.Pool{Name: "weighted", Algorithm: "maglev"}
	for i, b := range bs {
		pc.Backends = append(pc.Backends, conf.Backend{Address: b.addr, Protocol: "udp", Weight: weights[i]})
	}
	if err := pc.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	pool, err := route.NewPool(pc, route.Options{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	o := defaultOpts(t.Name(), pool)
	o.QUICLB = qs
	g := startGateway(t, "127.0.0.1:0", o)

	var mu sync.Mutex
	seen := map[string]int{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range jobs {
				name, err := connectAndAsk(ca, g.l.Addr(), 3)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				seen[name]++
				mu.Unlock()
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, b := range bs {
		want := float64(n*weights[i]) / float64(total)
		got := float64(seen[b.name])
		if d := got - want; d > 0.35*want+10 || -d > 0.35*want+10 {
			t.Errorf("backend %s (weight %d) took %v of %d connections, want about %.0f", b.name, weights[i], got, n, want)
		}
	}
	t.Logf("spread over weights %v: %v", weights, seen)
}

// connectAndAsk dials through the gateway from a fresh socket, opens
// streams streams, and returns the one backend that answered them all
// (an error if they disagree or the certificate is another's).
func connectAndAsk(ca *testCA, to net.Addr, streams int) (string, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", err
	}
	defer udp.Close()
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, to, ca.clientTLS(), &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		return "", err
	}
	defer c.CloseWithError(0, "")
	first := ""
	for range streams {
		got, err := askCtx(ctx, c)
		if err != nil {
			return "", err
		}
		if first != "" && got != first {
			return "", &movedError{first, got}
		}
		first = got
	}
	if cn := c.ConnectionState().TLS.PeerCertificates[0].Subject.CommonName; cn != first {
		return "", &movedError{cn, first}
	}
	return first, nil
}

type movedError struct{ from, to string }

func (e *movedError) Error() string { return "a connection was answered by " + e.from + " and " + e.to }
