package decode

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// On a cleartext socket the reader hands bytes through whole and in order,
// holds a buffer only while bytes are buffered, and a read that waits for
// bytes (an idle connection) holds none; the read deadline still ends it.
func TestH2Reader_HoldsNoBufferWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := newH2Reader(srv, srv)
	if r.raw == nil {
		t.Fatal("a TCP connection is not read through its descriptor")
	}
	want := bytes.Repeat([]byte("0123456789"), 10_000)
	go cli.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got[:9]); err != nil {
		t.Fatal(err)
	}
	if r.bp == nil {
		t.Fatal("no buffer while the rest of a read is buffered")
	}
	if _, err := io.ReadFull(r, got[9:]); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %v; bytes equal: %v", err, bytes.Equal(got, want))
	}
	if r.bp != nil {
		t.Fatal("the reader holds a buffer with nothing buffered")
	}
	srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Read(got); !isTimeout(err) {
		t.Fatalf("idle read ended with %v, want the deadline", err)
	}
	if r.bp != nil {
		t.Fatal("the reader holds a buffer after an idle wait")
	}
	cli.Close()
	srv.SetReadDeadline(time.Time{})
	if _, err := r.Read(got); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}
