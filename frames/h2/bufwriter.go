package h2

import (
	"io"
	"sync"
)

// bufWriterSize is a connection's write buffer while it holds one: a batch
// of frames goes out in writes of this size.
const bufWriterSize = 32 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, bufWriterSize); return &b }}

// BufWriter buffers a connection's frames between flushes, as bufio.Writer
// does, but holds its buffer only while bytes are buffered: Flush gives it
// back to a pool, so an idle connection holds no write buffer. Like
// bufio.Writer, the first write error sticks. It is owned by one goroutine
// (the connection's writer).
type BufWriter struct {
	w   io.Writer
	bp  *[]byte // nil while empty
	n   int
	err error
}

// NewBufWriter returns a BufWriter writing to w.
func NewBufWriter(w io.Writer) *BufWriter { return &BufWriter{w: w} }

// Write buffers p, writing the buffer out each time it fills.
func (b *BufWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if b.err != nil {
			return written, b.err
		}
		if b.bp == nil {
			b.bp = writeBufs.Get().(*[]byte)
		}
		k := copy((*b.bp)[b.n:], p)
		b.n += k
		written += k
		p = p[k:]
		if b.n == len(*b.bp) {
			b.writeOut()
		}
	}
	return written, b.err
}

// WriteString buffers s.
func (b *BufWriter) WriteString(s string) (int, error) { return b.Write([]byte(s)) }

func (b *BufWriter) writeOut() {
	if b.n == 0 || b.err != nil {
		return
	}
	_, b.err = b.w.Write((*b.bp)[:b.n])
	b.n = 0
}

// Flush writes what is buffered and gives the buffer back.
func (b *BufWriter) Flush() error {
	b.writeOut()
	if b.bp != nil {
		writeBufs.Put(b.bp)
		b.bp, b.n = nil, 0
	}
	return b.err
}

// Buffered returns the bytes waiting for a flush.
func (b *BufWriter) Buffered() int { return b.n }

// Holding reports whether the writer holds a buffer (for tests).
func (b *BufWriter) Holding() bool { return b.bp != nil }
