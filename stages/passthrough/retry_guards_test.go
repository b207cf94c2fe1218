package passthrough

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/quiclb"
	"github.com/expressgateway/expressgateway/stages/route"
)

// initial is a version-1 Initial with dcid, scid and token, padded to size.
func initial(dcid, scid, token []byte, size int) []byte {
	b := append([]byte{0xc0, 0, 0, 0, 1, byte(len(dcid))}, dcid...)
	b = append(b, byte(len(scid)))
	b = append(b, scid...)
	b = quic.AppendVarint(b, uint64(len(token)))
	b = append(b, token...)
	b = append(b, 0) // Length 0: the padding after it is not parsed
	return append(b, make([]byte, size-len(b))...)
}

// readRetry reads the Retry c receives for an Initial whose DCID was odcid.
func readRetry(t *testing.T, c *net.UDPConn, odcid []byte) quic.Header {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no Retry: %v", err)
	}
	o, _ := quic.NewConnID(odcid)
	h, err := quic.ParseRetry(buf[:n], o)
	if err != nil {
		t.Fatalf("not a valid Retry (%v): %x", err, buf[:n])
	}
	h.Token = bytes.Clone(h.Token)
	return h
}

func noReply(t *testing.T, c *net.UDPConn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(make([]byte, 2048)); err == nil {
		t.Fatalf("got a %d-byte reply", n)
	}
}

// mint_retry with raw packets: a tokenless Initial gets a valid Retry
// (integrity tag, token under the key naming the client, the ODCID and
// the Retry's SCID, which decodes to the backend the 4-tuple picks) and no
// flow; an Initial under 1200 bytes gets nothing; the Initial with the
// token opens a flow; tokens of another IP, too old, for another DCID are
// dropped and counted; one that does not open is answered with a fresh
// Retry, as if there were none.
func TestGuard_MintRetry(t *testing.T) {
	ss := newSinks(t, 3)
	pool := sinkPool(t, ss)
	cfg := quiclb.Config{ID: 2, ServerIDLen: 1, NonceLen: 7}
	dec, _ := quiclb.NewDecoder([]quiclb.Config{cfg})
	o := defaultOpts(t.Name(), pool)
	o.QUICLB = []QUICLB{{Config: cfg, ServerIDs: map[string]quiclb.ServerID{ss[0].addr: mustSID(t, 1), ss[1].addr: mustSID(t, 2), ss[2].addr: mustSID(t, 3)}}}
	o.Retry = &RetryOptions{Key: poolTokenKey}
	g := startGateway(t, "127.0.0.1:0", o)
	to := g.l.Addr().(*net.UDPAddr)
	c := udpClient(t)
	odcid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	scid := []byte{9, 9, 9, 9}

	c.WriteToUDP(initial(odcid, scid, nil, 1199), to)
	noReply(t, c)
	if counter(o.Name, `passthrough_dropped_total{reason="initial_too_small"}`) != 1 {
		t.Fatal("an Initial under 1200 bytes was not dropped as initial_too_small")
	}

	c.WriteToUDP(initial(odcid, scid, nil, 1200), to)
	r := readRetry(t, c, odcid)
	if r.DCID.String() != "09090909" || r.Version != quic.Version1 {
		t.Fatalf("Retry header %+v", r)
	}
	tok, err := quiclb.OpenToken(&poolTokenKey, r.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Retry || !tok.ClientIs(localOf(c).Addr()) || !bytes.Equal(tok.ODCID, odcid) || !bytes.Equal(tok.RSCID, r.SCID.Bytes()) ||
		tok.ServerSees != netip.MustParseAddr("127.0.0.1") || time.Since(tok.Issued) > time.Second {
		t.Fatalf("token %+v", tok)
	}
	want, _ := pool.Pick(route.Key{Src: localOf(c).Addr(), Hash: hash4(localOf(c), localOf(g.l.conn))})
	_, sid, why := dec.Decode(r.SCID.Bytes())
	if why != quiclb.Routable || sid != o.QUICLB[0].ServerIDs[want.Address] {
		t.Fatalf("Retry SCID %s decodes to %v (%v), the 4-tuple picks %s", r.SCID, sid, why, want.Address)
	}
	// The counter moves after the send the client has just read.
	waitFor(t, "the Retry counted", func() bool { return counter(o.Name, `passthrough_retry_sent_total{}`) == 1 })
	if g.l.Flows() != 0 {
		t.Fatalf("after a Retry: %d flows", g.l.Flows())
	}

	// Refused tokens: another client IP, too old, another DCID.
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.WriteToUDP(initial(r.SCID.Bytes(), scid, r.Token, 1200), to)
	old, _ := quiclb.SealRetryToken(&poolTokenKey, quiclb.RetryToken{ServerSees: netip.MustParseAddr("127.0.0.1"), Client: localOf(c).Addr(),
		Issued: time.Now().Add(-DefaultRetryTokenMaxAge - time.Second), ODCID: odcid, RSCID: r.SCID.Bytes()})
	c.WriteToUDP(initial(r.SCID.Bytes(), scid, old, 1200), to)
	c.WriteToUDP(initial([]byte{7, 7, 7, 7, 7, 7, 7, 7}, scid, r.Token, 1200), to)
	waitFor(t, "three refused tokens", func() bool {
		return counter(o.Name, `passthrough_retry_tokens_rejected_total{reason="client_address"}`) == 1 &&
			counter(o.Name, `passthrough_retry_tokens_rejected_total{reason="expired"}`) == 1 &&
			counter(o.Name, `passthrough_retry_tokens_rejected_total{reason="dcid"}`) == 1 &&
			counter(o.Name, `passthrough_dropped_total{reason="retry_token"}`) == 3
	})
	if g.l.Flows() != 0 {
		t.Fatal("a refused token opened a flow")
	}

	// A token that does not open: a fresh Retry.
	c.WriteToUDP(initial(odcid, scid, bytes.Repeat([]byte{0x5a}, 80), 1200), to)
	readRetry(t, c, odcid)
	if counter(o.Name, `passthrough_retry_tokens_rejected_total{reason="undecodable"}`) != 1 {
		t.Fatal("an undecodable token was not counted")
	}

	// The Initial with the token: forwarded, to the backend the SCID names.
	c.WriteToUDP(initial(r.SCID.Bytes(), scid, r.Token, 1200), to)
	if got := recvAny(t, ss); ss[got].addr != want.Address {
		t.Fatalf("the validated Initial went to %s, the Retry named %s", ss[got].addr, want.Address)
	}
	if g.l.Flows() != 1 || counter(o.Name, `passthrough_datagrams_total{route="cid"}`) != 1 {
		t.Fatalf("after the validated Initial: %d flows", g.l.Flows())
	}
	// On the flow, a later Initial with the token (the server's DCID now)
	// passes; a tokenless one (a new connection) gets a Retry.
	c.WriteToUDP(initial([]byte{4, 4, 4, 4, 4, 4, 4, 4}, scid, r.Token, 1200), to)
	recvAny(t, ss)
	c.WriteToUDP(initial([]byte{5, 5, 5, 5, 5, 5, 5, 5}, scid, nil, 1200), to)
	readRetry(t, c, []byte{5, 5, 5, 5, 5, 5, 5, 5})
	// Never a Retry for a datagram under 1200 bytes, on a flow or not,
	// whatever its token.
	c.WriteToUDP(initial([]byte{6, 6, 6, 6, 6, 6, 6, 6}, scid, nil, 1199), to)
	c.WriteToUDP(initial([]byte{6, 6, 6, 6, 6, 6, 6, 6}, scid, bytes.Repeat([]byte{0x5a}, 80), 1199), to)
	noReply(t, c)
	waitFor(t, "small Initials dropped", func() bool {
		return counter(o.Name, `passthrough_dropped_total{reason="initial_too_small"}`) == 3
	})
}

// Without QUIC-LB the Retry SCID is random, with the unroutable config
// codepoint, and the 4-tuple hash takes the next Initial to the backend
// the Retry chose.
func TestGuard_MintRetryRandomSCID(t *testing.T) {
	ss := newSinks(t, 3)
	pool := sinkPool(t, ss)
	o := defaultOpts(t.Name(), pool)
	o.Retry = &RetryOptions{Key: poolTokenKey}
	g := startGateway(t, "127.0.0.1:0", o)
	to := g.l.Addr().(*net.UDPAddr)
	for range 4 {
		c := udpClient(t)
		odcid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
		c.WriteToUDP(initial(odcid, nil, nil, 1200), to)
		r := readRetry(t, c, odcid)
		if r.SCID.Len() != retrySCIDLen || r.SCID.Bytes()[0]>>5 != quiclb.UnroutableConfig {
			t.Fatalf("random Retry SCID %s", r.SCID)
		}
		c.WriteToUDP(initial(r.SCID.Bytes(), nil, r.Token, 1200), to)
		want, _ := pool.Pick(route.Key{Src: localOf(c).Addr(), Hash: hash4(localOf(c), localOf(g.l.conn))})
		if got := recvAny(t, ss); ss[got].addr != want.Address {
			t.Fatalf("went to %s, want %s", ss[got].addr, want.Address)
		}
	}
}

// initial_rate_per_ip: a flood of flow-starting Initials from one IP (many
// ports) is cut at the bucket (the defaults: 200 at once, then 100/s),
// dropped and counted as initial_rate, while another IP still opens a
// flow.
func TestGuard_InitialFloodIsRateLimitedPerIP(t *testing.T) {
	ss := newSinks(t, 1)
	o := defaultOpts(t.Name(), sinkPool(t, ss)) // the defaults: 100/s, burst 200
	g := startGateway(t, "127.0.0.1:0", o)
	to := g.l.Addr().(*net.UDPAddr)
	const flood = 300
	drops := func() uint64 { return counter(o.Name, `passthrough_dropped_total{reason="initial_rate"}`) }
	start := time.Now()
	for i := range flood {
		c := udpClient(t)
		c.WriteToUDP(initial([]byte{byte(i), byte(i >> 8), 3, 4, 5, 6, 7, 8}, nil, nil, 1200), to)
		if i%25 == 24 {
			// In batches the socket buffer holds: every packet is
			// accounted for, as a flow or a drop.
			waitFor(t, "the batch a flow or a drop each", func() bool { return uint64(g.l.Flows())+drops() == uint64(i+1) })
		}
	}
	refill := int(time.Since(start).Seconds()*conf.DefaultPassthroughInitialRate) + 1
	if n := g.l.Flows(); n < conf.DefaultPassthroughInitialBurst || n > conf.DefaultPassthroughInitialBurst+refill {
		t.Fatalf("%d flows from one IP in %v, want the burst %d plus at most %d refilled", n, time.Since(start), conf.DefaultPassthroughInitialBurst, refill)
	}
	before := g.l.Flows()
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	d := drops()
	other.WriteToUDP(initial([]byte{9, 9, 9, 9, 5, 6, 7, 8}, nil, nil, 1200), to)
	waitFor(t, "another IP's flow", func() bool { return g.l.Flows() == before+1 })
	if drops() != d {
		t.Fatal("another IP's Initial was rate-limited")
	}
	t.Logf("flood of %d from one IP: %d flows, %d dropped", flood, before, d)
}

func TestRateTable(t *testing.T) {
	rt := newRateTable(10, 3, 2)
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	for i := range 3 {
		if !rt.allow(a, 0) {
			t.Fatalf("burst: packet %d refused", i)
		}
	}
	if rt.allow(a, 0) {
		t.Fatal("past the burst: allowed")
	}
	if rt.allow(a, int64(50*time.Millisecond)) || !rt.allow(a, int64(100*time.Millisecond)) {
		t.Fatal("refill is not 10/s")
	}
	rt.allow(b, int64(100*time.Millisecond))
	rt.allow(c, int64(100*time.Millisecond)) // evicts a, the least recent
	if rt.len() != 2 {
		t.Fatalf("%d buckets, bound 2", rt.len())
	}
	rt.expire(int64(100*time.Millisecond) + int64(300*time.Millisecond))
	if rt.len() != 0 {
		t.Fatalf("%d buckets left after they refilled", rt.len())
	}
	if newRateTable(0, 10, 10) != nil {
		t.Fatal("rate 0 is not off")
	}
}

// serverSees is the source address toward a backend, in its socket's
// form: IPv4 as 4 bytes, IPv4-mapped for a dual-stack backend, IPv6 as is.
func TestServerSees(t *testing.T) {
	for _, c := range []struct {
		dst  string
		dual bool
		want string
	}{
		{"127.0.0.1:443", false, "127.0.0.1"},
		{"127.0.0.1:443", true, "::ffff:127.0.0.1"},
		{"[::1]:443", false, "::1"},
		{"[::1]:443", true, "::1"},
	} {
		got, err := serverSees(netip.MustParseAddrPort(c.dst), c.dual)
		if err != nil {
			if c.dst[0] == '[' {
				t.Logf("no IPv6 loopback here: %v", err)
				continue
			}
			t.Fatal(err)
		}
		if got != netip.MustParseAddr(c.want) {
			t.Fatalf("%s dual=%v: %s, want %s", c.dst, c.dual, got, c.want)
		}
	}
}
