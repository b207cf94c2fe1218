package h2

import "sync/atomic"

// Window is a receive flow-control window (RFC 9113 §6.9). The connection
// reader consumes it as DATA arrives; whoever drains the data credits it
// back (from another goroutine), which is when a WINDOW_UPDATE may go out.
type Window struct{ n atomic.Int64 }

// NewWindow returns a window of n bytes.
func NewWindow(n int64) *Window {
	w := &Window{}
	w.n.Store(n)
	return w
}

// Consume takes n bytes; false means the peer sent more than the window
// allowed (a FLOW_CONTROL_ERROR).
func (w *Window) Consume(n int) bool { return w.n.Add(-int64(n)) >= 0 }

// Credit returns n bytes to the window.
func (w *Window) Credit(n int) { w.n.Add(int64(n)) }

// Avail returns the bytes the peer may still send.
func (w *Window) Avail() int64 { return w.n.Load() }

// SendWindow is a send flow-control window, owned by the writer.
type SendWindow int64

// Add applies a WINDOW_UPDATE increment or a SETTINGS_INITIAL_WINDOW_SIZE
// delta; false means the window crossed 2^31-1 (RFC 9113 §6.9.1: "A sender
// MUST NOT allow a flow-control window to exceed 2^31-1 octets").
func (w *SendWindow) Add(d int64) bool {
	*w += SendWindow(d)
	return *w <= MaxWindowSize
}
