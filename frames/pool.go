package frames

import "sync"

// bufPool holds MaxDataChunk-sized payload buffers. A pointer to a slice is
// pooled so that Put does not allocate.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, MaxDataChunk)
	return &b
}}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(p *[]byte) {
	*p = (*p)[:cap(*p)]
	bufPool.Put(p)
}
