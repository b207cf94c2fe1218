package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

// newTCPPool builds a pool of the given backend addresses.
func newTCPPool(t *testing.T, addrs ...string) *route.Pool {
	t.Helper()
	cfg := conf.Pool{Name: "t"}
	for _, a := range addrs {
		cfg.Backends = append(cfg.Backends, conf.Backend{Address: a, Protocol: "tcp"})
	}
	if err := cfg.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	p, err := route.NewPool(cfg, route.Options{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// relayPair returns the client side of a loopback connection whose server
// side is relayed by RelayTCP to pool, and the relay's result.
func relayPair(t *testing.T, pool *route.Pool) (*net.TCPConn, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	front, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := RelayTCP(context.Background(), front, "t", pool, route.Key{}, time.Second)
		done <- err
	}()
	return client.(*net.TCPConn), done
}

// A relayed connection carries bytes both ways, and each side's
// half-close reaches the other as EOF while the other direction still
// flows.
func TestRelayTCP_CopiesBothWaysAndPassesOnHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	backendGot := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // ends only on the client's half-close
		backendGot <- string(b)
		c.Write([]byte("pong:" + string(b)))
		c.(*net.TCPConn).CloseWrite()
	}()
	client, done := relayPair(t, newTCPPool(t, ln.Addr().String()))
	client.Write([]byte("ping"))
	client.CloseWrite()
	if got := <-backendGot; got != "ping" {
		t.Fatalf("backend read %q, want ping", got)
	}
	reply, err := io.ReadAll(client)
	if err != nil || string(reply) != "pong:ping" {
		t.Fatalf("client read %q, %v; want pong:ping after the half-close", reply, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("RelayTCP: %v", err)
	}
}

// A backend that refuses the connection gets the client closed and a
// DialError returned.
func TestRelayTCP_RefusedBackendClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connect is refused
	client, done := relayPair(t, newTCPPool(t, addr))
	var de *route.DialError
	if err := <-done; !errors.As(err, &de) {
		t.Fatalf("RelayTCP = %v, want a route.DialError", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read %d, %v; want EOF (closed by the relay)", n, err)
	}
}

// With one backend refusing, the relay's second pick goes to the other
// backend of the pool.
func TestRelayTCP_RetriesTheOtherBackendOfThePool(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("live"))
	}()
	// round robin: the first pick is the dead backend, the second the live one
	client, done := relayPair(t, newTCPPool(t, deadAddr, ln.Addr().String()))
	client.CloseWrite()
	got, _ := io.ReadAll(client)
	if string(got) != "live" {
		t.Fatalf("client read %q, want the live backend's bytes", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("RelayTCP: %v", err)
	}
}
