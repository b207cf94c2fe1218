package decode

import (
	"net"
	"time"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames/h2"
)

// H2Sender is the send side of an HTTP/2 client connection as the reader
// drives it (stages/encode's H2Writer; the pipeline builds it, through
// H2Config.NewSender, so that decode constructs no encoder). Every method
// is safe to call from any goroutine.
type H2Sender interface {
	// Settings queues our SETTINGS.
	Settings(s h2.Settings)
	// SettingsAck applies the client's settings to the send side and
	// queues the ACK; false is a window overflow (FLOW_CONTROL_ERROR).
	SettingsAck(s h2.Settings, delta int64) bool
	Ping(data [8]byte)
	PingAck(data [8]byte)
	// WindowUpdate applies a send-window increment (id 0: the
	// connection); false is an overflow past 2^31-1.
	WindowUpdate(id, incr uint32) bool
	// Reset queues RST_STREAM and drops what the stream had to send.
	Reset(id uint32, code h2.ErrCode)
	// Drop ends a stream's send side without a frame.
	Drop(id uint32)
	// GoAway queues GOAWAY; closeAfter stops the writer once it is out.
	GoAway(last uint32, code h2.ErrCode, debug string, closeAfter bool)
	// Credit records n drained request bytes of stream id (0: only the
	// connection) and queues WINDOW_UPDATE as a quarter window is owed.
	Credit(id uint32, n int, streamOpen bool)
	// Open registers a stream whose response comes on resp; the returned
	// channel closes when its send side is over. method and grpcCall shape
	// a local answer the send side may have to make up.
	Open(id uint32, resp *bus.Link, method string, grpcCall bool, window int) <-chan struct{}
	// Close forgets a finished stream.
	Close(id uint32)
	// Stalled returns the streams blocked on a zero window since before
	// cutoff; Blocked whether any is blocked at all.
	Stalled(cutoff time.Time) []uint32
	Blocked() bool
	// Done closes when the writer stopped for good; Err says why (nil: a
	// requested close).
	Done() <-chan struct{}
	Err() error
	// Shutdown stops writing and drops every queued frame and stream.
	Shutdown()
}

// H2SenderFunc builds the send side of a connection: its Framer writes into
// bw over conn; onStop is called once when the writer stops on its own (a
// write error, or nil after a requested close).
type H2SenderFunc func(conn net.Conn, bw *h2.BufWriter, w *h2.Writer, onStop func(err error)) H2Sender
