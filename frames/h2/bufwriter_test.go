package h2

import (
	"bytes"
	"errors"
	"testing"
)

// Bytes come out whole and in order, in writes no larger than the buffer,
// and after a flush the writer holds no buffer.
func TestBufWriter_WritesInOrderAndLetsGoWhenFlushed(t *testing.T) {
	var out bytes.Buffer
	w := NewBufWriter(&out)
	var want []byte
	for i := range 3000 {
		p := bytes.Repeat([]byte{byte(i)}, i%97)
		want = append(want, p...)
		w.Write(p)
	}
	if w.Buffered() == 0 || !w.Holding() {
		t.Fatal("nothing buffered before the flush")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("wrote %d bytes, want %d in order", out.Len(), len(want))
	}
	if w.Holding() || w.Buffered() != 0 {
		t.Fatal("the writer holds its buffer after a flush")
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

// The first write error sticks, as bufio.Writer's does.
func TestBufWriter_ErrorSticks(t *testing.T) {
	w := NewBufWriter(failWriter{})
	w.Write([]byte("x"))
	if err := w.Flush(); err == nil {
		t.Fatal("flush over a failing writer succeeded")
	}
	if _, err := w.Write([]byte("y")); err == nil {
		t.Fatal("a write after the error succeeded")
	}
}
