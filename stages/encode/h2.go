package encode

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages"
)

// h2BatchBytes bounds the DATA bytes one write cycle takes from the
// streams, so control frames and other streams get a turn.
const h2BatchBytes = 128 << 10

// h2StreamQueue bounds the frames the writer takes off a stream's link
// ahead of the windows (their bytes still count on the link until written),
// so a flood of empty frames cannot grow the queue.
const h2StreamQueue = 16

// ErrZeroWindow is the cause a stream is reset with when the client kept
// its window at zero past the stall timeout.
var ErrZeroWindow = errors.New("encode: client flow-control window stalled at zero")

// errWriterPanic is the writer's error after a recovered panic.
var errWriterPanic = errors.New("encode: h2 writer panicked")

// errWriterStopped is Err after Shutdown with no write error.
var errWriterStopped = errors.New("encode: h2 writer stopped")

// H2WriterConfig is what the writer of a client connection needs.
type H2WriterConfig struct {
	WriteTimeout time.Duration
	// ConnWindow is our connection receive window (credit batching).
	ConnWindow int
	// Log receives recovered panics of the writer goroutine.
	Log zerolog.Logger
	// OnStop, if set, is called once, from the writer goroutine, when the
	// writer stops for good on its own: a write failed or panicked (err),
	// or the GOAWAY that asked to close went out (nil).
	OnStop func(err error)
}

// H2Writer is the send side of one HTTP/2 client connection, over the
// engine h2.Sched. Other goroutines only queue, under mu: the reader its
// control frames (ACKs, RST_STREAM, WINDOW_UPDATE, GOAWAY) and window
// changes, and each stream's actor its response frames, by sending them on
// the stream's link, whose readiness the writer hears (bus.Notifier): the
// writer takes the frames off the links itself.
//
// The writer goroutine runs only while something is queued: an idle
// connection has none. Each cycle takes a batch (control frames, then one
// frame per ready stream per round), writes it and flushes once, then
// returns the link credit of the bytes written.
type H2Writer struct {
	conn net.Conn
	bw   *h2.BufWriter
	w    *h2.Writer
	cfg  H2WriterConfig

	mu       sync.Mutex
	s        *h2.Sched
	streams  map[uint32]*H2Stream
	pull     []*H2Stream // streams whose links may hold frames
	running  bool        // a writer goroutine is on
	parked   bool        // it waits on wake: nothing to write, streams open
	open     int         // streams whose send side is not over
	wake     chan struct{}
	stopped  bool // no more writing: error, requested close, Shutdown
	closeNow bool // stop once the queued control frames are out
	err      error
	idle     sync.Cond // signalled when running turns false
	done     chan struct{}
	items    []h2.Item // the writer goroutine's batch, reused
}

// H2Stream is the send side of one stream: the writer's view of its
// response link.
type H2Stream struct {
	ID   uint32
	Resp *bus.Link

	w      *H2Writer
	ss     *h2.SendStream
	method string
	grpc   bool // a gRPC call: a local answer is a gRPC status
	// headQueued is set once a final response head is queued; before it a
	// failure can still become a status response.
	headQueued bool
	linkOver   bool // the link's last frame was taken or its close handled
	detached   bool // no longer notified; the link discarded
	pulling    bool // in w.pull
	finished   bool

	// Finished is closed when the stream's send side is over (its end or
	// reset written, or the stream dropped).
	Finished chan struct{}
}

// NewH2Writer returns the writer of conn; the Framer behind w writes into
// bw, which the writer flushes once per batch.
func NewH2Writer(conn net.Conn, bw *h2.BufWriter, w *h2.Writer, cfg H2WriterConfig) *H2Writer {
	x := &H2Writer{
		conn: conn,
		bw:   bw,
		w:    w,
		cfg:  cfg,
		s:    h2.NewSched(cfg.ConnWindow, false),
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	x.idle.L = &x.mu
	return x
}

// ReleaseOut implements h2.Owner: a written or dropped frame goes back to
// the pool and, if it came from the link, its bytes to the link's budget.
// Frames the writer made up (a local status) were never on the link.
func (st *H2Stream) ReleaseOut(o *h2.Out) {
	if o.Local {
		o.Release()
		return
	}
	st.Resp.Consumed(&o.Frame)
}

// SendDone implements h2.Owner.
func (st *H2Stream) SendDone() {
	if !st.finished {
		st.finished = true
		st.w.open--
		if st.w.open == 0 && st.w.parked {
			st.w.kickLocked() // the parked writer has nothing left to wait for
		}
		close(st.Finished)
	}
}

// LinkReady implements bus.Notifier: the actor sent a frame or closed the
// link; the writer takes it from there.
func (st *H2Stream) LinkReady() {
	w := st.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if !st.pulling && !st.linkOver {
		// A stream already in the pull list is the writer's to take:
		// it has not run dry, or its queue waits on a window.
		st.pulling = true
		w.pull = append(w.pull, st)
		w.kickLocked()
	}
}

// kickLocked starts the writer goroutine if it is not running, or wakes
// it if it is parked.
func (w *H2Writer) kickLocked() {
	switch {
	case w.stopped:
	case !w.running:
		w.running = true
		go w.run()
	case w.parked:
		w.parked = false
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *H2Writer) queue(c h2.Ctrl) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.Control(c)
	w.kickLocked()
}

// Settings queues our SETTINGS.
func (w *H2Writer) Settings(s h2.Settings) { w.queue(h2.Ctrl{Kind: h2.CtrlSettings, Settings: s}) }

// SettingsAck applies the peer's settings to the send side (frame size,
// and the change of the initial window to every stream, RFC 9113 §6.9.2)
// and queues the ACK, as whose write the header table size follows. False
// means a stream window overflowed (a FLOW_CONTROL_ERROR connection error).
func (w *H2Writer) SettingsAck(s h2.Settings, delta int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ok := w.s.PeerSettings(s, delta)
	w.kickLocked()
	return ok
}

// PingAck queues the answer to a PING.
func (w *H2Writer) PingAck(data [8]byte) { w.queue(h2.Ctrl{Kind: h2.CtrlPingAck, Ping: data}) }

// Ping queues a PING.
func (w *H2Writer) Ping(data [8]byte) { w.queue(h2.Ctrl{Kind: h2.CtrlPing, Ping: data}) }

// WindowUpdate applies a send-window increment (id 0: the connection).
// False means the window overflowed 2^31-1: a FLOW_CONTROL_ERROR, of the
// connection for id 0, of the stream otherwise.
func (w *H2Writer) WindowUpdate(id uint32, incr uint32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.s.WindowUpdate(id, incr) {
		return false
	}
	w.kickLocked()
	return true
}

// Reset queues RST_STREAM for id and drops whatever the stream still had
// to send.
func (w *H2Writer) Reset(id uint32, code h2.ErrCode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.streams[id]
	w.s.Reset(id, code)
	if st != nil {
		w.detachLocked(st)
	}
	w.kickLocked()
}

// Drop ends a stream's send side without a frame (the client reset it).
func (w *H2Writer) Drop(id uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st := w.streams[id]; st != nil {
		w.s.Drop(st.ss)
		w.detachLocked(st)
	}
}

var errStreamReset = errors.New("encode: stream reset")

// detachLocked stops taking frames from a dropped stream's link and
// releases what it still holds. The notifier goes first: Discard closes
// the link, and its readiness call would take mu again.
func (w *H2Writer) detachLocked(st *H2Stream) {
	if st.detached {
		return
	}
	st.detached, st.linkOver = true, true
	st.Resp.Notify(nil)
	st.Resp.Discard(errStreamReset)
}

// GoAway queues GOAWAY. With closeAfter the writer stops once it is out.
func (w *H2Writer) GoAway(last uint32, code h2.ErrCode, debug string, closeAfter bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.Control(h2.Ctrl{Kind: h2.CtrlGoAway, ID: last, Code: code, Debug: debug})
	if closeAfter {
		w.closeNow = true
	}
	w.kickLocked()
}

// Credit records n drained bytes of stream id (0: only the connection) and
// queues WINDOW_UPDATE frames once a quarter of a window is owed, so that
// the client's window reopens only as fast as the stream's consumer drains.
// streamOpen is false once the client ended the stream (no stream update).
func (w *H2Writer) Credit(id uint32, n int, streamOpen bool) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var ss *h2.SendStream
	if st := w.streams[id]; st != nil {
		ss = st.ss
	}
	if w.s.Credit(ss, n, streamOpen) {
		w.kickLocked()
	}
}

// Open registers the send side of a new stream whose response comes on
// resp; window is our initial stream window (for credit batching). The
// writer takes resp's frames as they are sent; Finished closes once the
// send side is over. A response that fails before its head becomes a
// status, after it a RST_STREAM.
func (w *H2Writer) Open(id uint32, resp *bus.Link, method string, grpcCall bool, window int) <-chan struct{} {
	st := &H2Stream{ID: id, Resp: resp, w: w, method: method, grpc: grpcCall, Finished: make(chan struct{})}
	w.mu.Lock()
	st.ss = w.s.Open(id, st, window)
	if w.streams == nil {
		w.streams = map[uint32]*H2Stream{} // given up by Close when empty
	}
	w.streams[id] = st
	w.open++
	w.mu.Unlock()
	resp.Notify(st)
	return st.Finished
}

// Close removes a finished stream (dropping it if it is not).
func (w *H2Writer) Close(id uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.streams[id]
	if st == nil {
		return
	}
	w.s.Close(st.ss) // drops it first if its send side is not over
	w.detachLocked(st)
	if delete(w.streams, id); len(w.streams) == 0 {
		w.streams = nil // an idle connection keeps no map
	}
}

// pullLocked takes the frames the ready links hold into the engine, up to
// h2StreamQueue per stream.
func (w *H2Writer) pullLocked() {
	keep := w.pull[:0]
	for _, st := range w.pull {
		if w.take(st) {
			keep = append(keep, st)
		} else {
			st.pulling = false
		}
	}
	clear(w.pull[len(keep):])
	w.pull = keep
}

// take moves st's ready frames into the engine; true means it stopped for
// room, with frames possibly left on the link.
func (w *H2Writer) take(st *H2Stream) bool {
	for !st.linkOver {
		if st.ss.Queued() >= h2StreamQueue {
			return true
		}
		// The cause is read before the frame: a link closed by then holds
		// all its frames already, so an empty one is over.
		cause := st.Resp.Cause()
		f, ok := st.Resp.TryRecv()
		if !ok {
			if cause != nil {
				st.linkOver = true
				if !st.ss.Closed() {
					w.fail(st, cause)
				}
			}
			return false
		}
		w.push(st, f)
	}
	return false
}

// push queues one frame of the link on the engine.
func (w *H2Writer) push(st *H2Stream, f frames.Frame) {
	if st.ss.Closed() {
		st.Resp.Consumed(&f)
		return
	}
	end := f.End || f.Kind == frames.KindReset || f.Kind == frames.KindTrailers
	if f.Kind == frames.KindHeaders && f.Head != nil && f.Head.Status >= 200 {
		st.headQueued = true
	}
	if f.Kind == frames.KindReset && !st.headQueued {
		// No head went out yet: answer with a status instead.
		st.Resp.Consumed(&f)
		w.queueLocal(st, StatusForCode(f.Code))
	} else {
		w.s.Push(st.ss, h2.Out{Frame: f})
	}
	if end {
		st.linkOver = true
	}
}

// queueLocal queues a status answer the writer made up.
func (w *H2Writer) queueLocal(st *H2Stream, status int) {
	st.headQueued = true
	for _, f := range localResponse(status, st.method, st.grpc) {
		w.s.Push(st.ss, h2.Out{Frame: f, Local: true})
	}
}

// fail ends a response whose link closed without an end: a status when no
// head went out, otherwise RST_STREAM (never a clean END_STREAM).
func (w *H2Writer) fail(st *H2Stream, cause error) {
	if !st.headQueued {
		w.queueLocal(st, statusForCause(cause))
		return
	}
	code := frames.CodeInternal
	var re *frames.ResetError
	if errors.As(cause, &re) {
		code = re.Code
	}
	if bus.IsCleanEnd(cause) {
		code = frames.CodeInternal // closed cleanly without an End: still an abort
	}
	w.s.Push(st.ss, h2.Out{Frame: frames.ResetFrame(code), Local: true})
}

func localResponse(status int, method string, grpcCall bool) []frames.Frame {
	h, body := LocalResponse(status, method, grpcCall)
	if body == "" {
		return []frames.Frame{frames.HeadersFrame(h, true)}
	}
	return []frames.Frame{frames.HeadersFrame(h, false), frames.CopyData([]byte(body), true)}
}

// Stalled returns the streams blocked on a zero window since before
// cutoff (the zero-window stall rule's input).
func (w *H2Writer) Stalled(cutoff time.Time) []uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s.Stalled(cutoff)
}

// Blocked reports whether a stream waits on a zero window.
func (w *H2Writer) Blocked() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s.Blocked()
}

// Done is closed once the writer stopped for good.
func (w *H2Writer) Done() <-chan struct{} { return w.done }

// Err returns why the writer stopped (nil while running, and after the
// close a GOAWAY asked for).
func (w *H2Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// stopLocked stops the writer for good.
func (w *H2Writer) stopLocked(err error) {
	if w.stopped {
		return
	}
	w.stopped = true
	w.err = err
	close(w.done)
}

// run is the writer goroutine: batches until nothing is left to write.
func (w *H2Writer) run() {
	var stopErr error
	stopping, locked := false, false
	defer func() {
		if r := recover(); r != nil {
			// The writer handles what the client's frames made us queue:
			// a panic closes this connection only.
			stages.Panicked(w.cfg.Log, r, w.conn)
			if !locked {
				w.mu.Lock()
			}
			w.stopLocked(errWriterPanic)
			w.running = false
			w.idle.Broadcast()
			w.mu.Unlock()
			stopping, stopErr = true, errWriterPanic
		}
		if stopping && w.cfg.OnStop != nil {
			w.cfg.OnStop(stopErr)
		}
	}()
	w.mu.Lock()
	locked = true
	for !w.stopped {
		w.pullLocked()
		items := w.s.Next(w.items[:0], h2BatchBytes, time.Now())
		if len(items) == 0 {
			if w.closeNow {
				w.stopLocked(nil)
				stopping = true
				break
			}
			if w.open == 0 {
				// Idle: the goroutine ends, and what its last burst
				// grew goes with it.
				w.items = nil
				if len(w.pull) == 0 {
					w.pull = nil
				}
				w.s.Trim()
				break
			}
			// Streams are open: their next frames are near, so the
			// goroutine waits for them rather than end and start again
			// for each (an idle connection has no open stream, and no
			// writer).
			w.parked = true
			w.mu.Unlock()
			locked = false
			select {
			case <-w.wake:
			case <-w.done:
			}
			w.mu.Lock()
			locked = true
			w.parked = false
			continue
		}
		closeAfter := w.closeNow
		w.mu.Unlock()
		locked = false
		// The deadline covers the whole batch: a batch larger than the
		// buffer reaches the socket before the flush.
		if w.cfg.WriteTimeout > 0 {
			w.conn.SetWriteDeadline(time.Now().Add(w.cfg.WriteTimeout))
		}
		err := w.write(items)
		if err == nil {
			err = w.bw.Flush()
		}
		w.mu.Lock()
		locked = true
		w.s.Written(items)
		clear(items)
		w.items = items[:0]
		if err != nil {
			w.stopLocked(err)
			stopping, stopErr = true, err
			break
		}
		if closeAfter && !w.s.Pending() {
			w.stopLocked(nil)
			stopping = true
			break
		}
	}
	w.running = false
	w.idle.Broadcast()
	w.mu.Unlock()
	locked = false
}

func (w *H2Writer) write(items []h2.Item) error {
	fr := w.w.Framer()
	for i := range items {
		it := &items[i]
		var err error
		switch {
		case it.Stream == nil:
			err = w.w.WriteCtrl(&it.Ctrl)
		case it.Out.Kind == frames.KindData:
			err = fr.WriteData(it.Stream.ID, it.End, it.Data)
		case it.Out.Kind == frames.KindHeaders:
			err = w.w.WriteBlock(it.Stream.ID, w.w.EncodeResponse(it.Out.Head), it.Out.End)
		case it.Out.Kind == frames.KindTrailers:
			err = w.w.WriteBlock(it.Stream.ID, w.w.EncodeTrailers(it.Out.Head.Fields), true)
		case it.Out.Kind == frames.KindReset:
			err = fr.WriteRSTStream(it.Stream.ID, http2Code(h2.FromNeutral(it.Out.Code)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Shutdown stops the writer: it waits for a batch being written, then
// drops every queued frame and stream (the connection is over). Streams'
// Finished channels close.
func (w *H2Writer) Shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopLocked(errWriterStopped)
	for w.running {
		w.idle.Wait()
	}
	for _, st := range w.streams {
		w.detachLocked(st)
	}
	w.s.DropAll()
	w.pull = nil
}
