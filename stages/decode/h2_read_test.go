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
// bytes (an idle connection) holds none; the read deadline still ends it,
// whether the wait is a Read's or await's (the reader's, between frames).
// Bytes the sniff read past the preface come first.
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
	want := bytes.Repeat([]byte("0123456789"), 10_000)
	r := newH2Reader(srv, srv, bytes.Clone(want[:5]))
	if r.raw == nil {
		t.Fatal("a TCP connection is not read through its descriptor")
	}
	go cli.Write(want[5:])
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
	srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	r.await()
	if r.bp != nil {
		t.Fatal("the reader holds a buffer after an idle await")
	}
	if _, err := r.Read(got); !isTimeout(err) {
		t.Fatalf("the read after an idle await ended with %v, want the deadline", err)
	}
	go cli.Write([]byte("x"))
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r.await(); r.bp == nil {
		t.Fatal("await returned without the bytes that ended it")
	}
	if n, err := r.Read(got); n != 1 || err != nil || got[0] != 'x' {
		t.Fatalf("read after await: %d %v", n, err)
	}
	cli.Close()
	srv.SetReadDeadline(time.Time{})
	if _, err := r.Read(got); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}
