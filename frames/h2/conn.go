package h2

import (
	"io"
	"math"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/frames"
)

// Role says which end of the connection a Conn plays.
type Role uint8

// The two roles.
const (
	RoleServer Role = iota // we accept streams the client opens
	RoleClient             // we open streams on a backend
)

// Preface is the client connection preface (RFC 9113 §3.4).
const Preface = http2.ClientPreface

// EventType says what Next read.
type EventType uint8

// The events of Conn.Next.
const (
	EvIgnored        EventType = iota // a frame with nothing to do (late frame on a stream we reset, unknown type)
	EvHeaders                         // a request head (server) or a response head, 1xx included (client)
	EvTrailers                        // a trailer block; always ends the stream
	EvData                            // a DATA frame's payload (borrowed)
	EvReset                           // the peer reset a stream
	EvWindowUpdate                    // a send-window increment (Stream 0: the connection)
	EvSettings                        // new peer settings (Settings), InitialDelta to apply to streams
	EvSettingsAck                     // the peer acknowledged our SETTINGS
	EvPing                            // a PING to acknowledge with the same payload
	EvPingAck                         // the answer to our PING
	EvGoAway                          // the peer is going away
	EvPriority                        // PRIORITY or PRIORITY_UPDATE: parsed and ignored
	EvHeaderFragment                  // a HEADERS or CONTINUATION frame of a block not yet complete
	EvUnknown                         // a frame of an unknown type (ignored, RFC 9113 §5.5)
)

// Event is one step of the connection as read from the peer.
type Event struct {
	Type   EventType
	Stream uint32
	// Head is the decoded head (EvHeaders) or trailer block (EvTrailers).
	Head *frames.Head
	// Refuse, for EvHeaders, is a status to answer instead of forwarding the
	// request (431: the block crossed the header-list cap; 400).
	Refuse int
	// RefuseReason is the counter token of Refuse.
	RefuseReason string
	End          bool
	// Data is a DATA payload, valid until the next call to Next.
	Data []byte
	// Flow is the flow-controlled length of a DATA frame (padding
	// included): the bytes to credit back once Data is drained. On a
	// StreamError it is the connection credit of the discarded frame.
	Flow     int
	Code     ErrCode
	Incr     uint32
	Ping     [8]byte
	Last     uint32
	Debug    []byte
	Settings Settings
	// InitialDelta is the change of SETTINGS_INITIAL_WINDOW_SIZE, to add to
	// every open stream's send window (RFC 9113 §6.9.2).
	InitialDelta int64
	// Frags and Encoded count the frames and encoded bytes of the header
	// block so far (EvHeaderFragment, EvHeaders, EvTrailers): the
	// CONTINUATION flood guard judges them.
	Frags, Encoded int
}

// Stream is the receive-side state of one stream.
type Stream struct {
	ID uint32
	// Recv is our receive window for the stream.
	Recv *Window

	remoteClosed bool
	gotHead      bool  // server: request head; client: final response head
	noBody       bool  // client: a HEAD request, or a 204/304: content-length describes no body
	declared     int64 // content-length, -1 if none
	received     int64
}

// recent remembers streams that are closed: reset by us (late frames are
// ignored) or closed by the peer (late frames are errors).
type recent struct {
	id      uint32
	byUs    bool
	present bool
}

// Conn is the receive side of one HTTP/2 connection and the stream table
// both sides share. Next is called by one goroutine (the connection
// reader); Open, Forget, ResetLocal and LastPeerStream may be called from
// others.
type Conn struct {
	role Role
	fr   *http2.Framer
	dec  *hpack.Decoder

	// Local are the settings we announced: the limits we enforce.
	Local Settings
	// Peer are the settings the peer announced (reader's copy).
	Peer Settings
	// MaxFields caps the fields of one header block.
	MaxFields int
	// Underscore is the policy for request field names with "_" (server
	// role; the zero value rejects).
	Underscore frames.UnderscorePolicy

	connRecv *Window

	mu        sync.Mutex
	streams   map[uint32]*Stream
	ring      [RecentResets]recent
	ringN     int
	lastPeer  uint32 // server: highest stream id the client opened
	nextLocal uint32 // client: next stream id to open

	sawSettings bool
	hb          headerBlock
}

type headerBlock struct {
	id       uint32
	end      bool
	ignore   bool  // a late block on a stream we reset: decode and drop
	pending  error // a verdict to return once the block is decoded (HPACK must stay in step)
	fields   []hpack.HeaderField
	size     int
	tooLarge bool
	frags    int
	encoded  int
}

// NewConn returns the receive side of a connection reading frames from r
// and writing through w (the same Framer serves the Writer). local are the
// settings we announce; the caller writes them (Writer.Settings) first.
func NewConn(role Role, w io.Writer, r io.Reader, local Settings) *Conn {
	fr := http2.NewFramer(w, r)
	fr.SetMaxReadFrameSize(local.MaxFrameSize)
	c := &Conn{
		role:      role,
		fr:        fr,
		Local:     local,
		Peer:      DefaultSettings(),
		MaxFields: DefaultMaxFields,
		connRecv:  NewWindow(InitialWindowSize),
		nextLocal: 1,
	}
	c.dec = hpack.NewDecoder(local.HeaderTableSize, c.emit)
	c.dec.SetMaxStringLength(int(min(uint32(MaxHeaderStringLen), local.MaxHeaderListSize)))
	return c
}

// Framer returns the connection's Framer, for the Writer.
func (c *Conn) Framer() *http2.Framer { return c.fr }

// ConnWindow is our connection-level receive window.
func (c *Conn) ConnWindow() *Window { return c.connRecv }

// InHeaderBlock reports whether a header block is open (its CONTINUATION
// frames are still due): the reader's header timeout runs meanwhile.
func (c *Conn) InHeaderBlock() bool { return c.hb.id != 0 }

func (c *Conn) emit(f hpack.HeaderField) {
	hb := &c.hb
	hb.size += int(f.Size())
	if hb.size > int(c.Local.MaxHeaderListSize) || len(hb.fields) >= c.MaxFields {
		hb.tooLarge = true
		c.dec.SetEmitEnabled(false)
		return
	}
	hb.fields = append(hb.fields, f)
}

// Next reads frames until one yields an event or an error. A *ConnError
// means GOAWAY and close; a *StreamError means RST_STREAM (the stream is
// already closed in the table); any other error is the transport's.
func (c *Conn) Next() (Event, error) {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return Event{}, mapFramerError(c.fr, err)
	}
	if c.role == RoleServer && !c.sawSettings {
		// RFC 9113 §3.4: the client preface "MUST be followed by a
		// SETTINGS frame".
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
			return Event{}, connErr(ErrCodeProtocol, "h2_preface_no_settings")
		}
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.data(f)
	case *http2.HeadersFrame:
		return c.headers(f)
	case *http2.ContinuationFrame:
		return c.fragment(f.StreamID, f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.SettingsFrame:
		return c.settings(f)
	case *http2.PingFrame:
		ev := Event{Type: EvPing, Ping: f.Data}
		if f.IsAck() {
			ev.Type = EvPingAck
		}
		return ev, nil
	case *http2.GoAwayFrame:
		return Event{Type: EvGoAway, Last: f.LastStreamID, Code: ErrCode(f.ErrCode), Debug: f.DebugData()}, nil
	case *http2.WindowUpdateFrame:
		return c.windowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.rstStream(f)
	case *http2.PriorityFrame:
		// RFC 9113 §5.3.1 (RFC 7540): "A stream cannot depend on itself.
		// An endpoint MUST treat this as a stream error of type
		// PROTOCOL_ERROR."
		if f.StreamDep == f.StreamID {
			c.closeStream(f.StreamID, true)
			return Event{}, streamErr(f.StreamID, ErrCodeProtocol, "h2_priority_self_dependency")
		}
		return Event{Type: EvPriority, Stream: f.StreamID}, nil
	case *http2.PriorityUpdateFrame:
		return Event{Type: EvPriority, Stream: f.StreamID}, nil
	case *http2.PushPromiseFrame:
		// RFC 9113 §8.4: "A client cannot push"; and we announce
		// ENABLE_PUSH=0 to backends: "receipt of a PUSH_PROMISE frame
		// [is] a connection error of type PROTOCOL_ERROR".
		return Event{}, connErr(ErrCodeProtocol, "h2_push_promise")
	}
	return Event{Type: EvUnknown}, nil
}

// idle reports whether id names a stream that was never opened.
func (c *Conn) idle(id uint32) bool {
	if c.role == RoleServer {
		return id%2 == 1 && id > c.lastPeer || id%2 == 0
	}
	return id%2 == 1 && id >= c.nextLocal || id%2 == 0
}

// lookupClosed reports whether a stream that is not in the table was
// closed recently and whether we reset it.
func (c *Conn) lookupClosed(id uint32) (found, byUs bool) {
	for i := range c.ring {
		if r := &c.ring[i]; r.present && r.id == id {
			return true, r.byUs
		}
	}
	return false, false
}

func (c *Conn) remember(id uint32, byUs bool) {
	c.ring[c.ringN%len(c.ring)] = recent{id: id, byUs: byUs, present: true}
	c.ringN++
}

// closeStream removes a stream from the table (caller holds no lock).
func (c *Conn) closeStream(id uint32, byUs bool) {
	c.mu.Lock()
	c.dropLocked(id)
	c.remember(id, byUs)
	c.mu.Unlock()
}

func (c *Conn) stream(id uint32) *Stream {
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	return s
}

func (c *Conn) data(f *http2.DataFrame) (Event, error) {
	id := f.StreamID
	flow := int(f.Length)
	// RFC 9113 §6.9: flow control applies to the whole payload, padding
	// included, whatever the stream's state.
	if !c.connRecv.Consume(flow) {
		return Event{}, connErr(ErrCodeFlowControl, "h2_conn_window_exceeded")
	}
	c.mu.Lock()
	s := c.streams[id]
	idle := c.idle(id)
	found, byUs := c.lookupClosed(id)
	c.mu.Unlock()
	ev := Event{Type: EvIgnored, Stream: id, Flow: flow}
	if s == nil {
		switch {
		case idle:
			// RFC 9113 §5.1: idle: "Receiving any frame other than HEADERS
			// or PRIORITY on a stream in this state MUST be treated as a
			// connection error of type PROTOCOL_ERROR."
			return Event{}, connErr(ErrCodeProtocol, "h2_data_on_idle_stream")
		case found && byUs:
			return ev, nil // in flight before our RST_STREAM (§5.4.2)
		}
		// RFC 9113 §6.1: "If a DATA frame is received whose stream is not
		// in the open or half-closed (local) state, the recipient MUST
		// respond with a stream error of type STREAM_CLOSED."
		c.closeStream(id, true)
		return ev, streamErr(id, ErrCodeStreamClosed, "h2_data_on_closed_stream")
	}
	if s.remoteClosed {
		c.closeStream(id, true)
		return ev, streamErr(id, ErrCodeStreamClosed, "h2_data_after_end_stream")
	}
	if !s.Recv.Consume(flow) {
		c.closeStream(id, true)
		return ev, streamErr(id, ErrCodeFlowControl, "h2_stream_window_exceeded")
	}
	if !s.gotHead {
		// RFC 9113 §8.1: a response's DATA before its final head is
		// malformed.
		c.closeStream(id, true)
		s.Recv.Credit(flow)
		return ev, streamErr(id, ErrCodeProtocol, "h2_data_before_head")
	}
	data := f.Data()
	s.received += int64(len(data))
	// RFC 9113 §8.1.1: "A request or response is also malformed if the
	// value of a content-length header field does not equal the sum of the
	// DATA frame payload lengths that form the content."
	if s.declared >= 0 && !s.noBody && (s.received > s.declared || f.StreamEnded() && s.received != s.declared) {
		c.closeStream(id, true)
		return ev, streamErr(id, ErrCodeProtocol, "h2_content_length_mismatch")
	}
	if f.StreamEnded() {
		c.mu.Lock()
		s.remoteClosed = true
		c.mu.Unlock()
	}
	return Event{Type: EvData, Stream: id, Data: data, End: f.StreamEnded(), Flow: flow}, nil
}

func (c *Conn) headers(f *http2.HeadersFrame) (Event, error) {
	id := f.StreamID
	c.hb = headerBlock{id: id, end: f.StreamEnded(), fields: c.hb.fields[:0]}
	c.dec.SetEmitEnabled(true)
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.hb.pending = streamErr(id, ErrCodeProtocol, "h2_headers_self_dependency")
	}
	c.mu.Lock()
	s := c.streams[id]
	switch {
	case s != nil:
		if s.remoteClosed {
			// RFC 9113 §5.1: after END_STREAM, frames other than
			// WINDOW_UPDATE, PRIORITY or RST_STREAM are STREAM_CLOSED
			// errors; a whole new header block there is a connection
			// error whether or not our side is done yet (§5.4.1 allows
			// the larger scope), so the verdict does not race our
			// response.
			c.mu.Unlock()
			return Event{}, connErr(ErrCodeStreamClosed, "h2_headers_after_end_stream")
		}
	case c.role == RoleServer && id%2 == 0:
		c.mu.Unlock()
		// RFC 9113 §5.1.1: "Streams initiated by a client MUST use
		// odd-numbered stream identifiers".
		return Event{}, connErr(ErrCodeProtocol, "h2_even_stream_id")
	case c.role == RoleServer && id > c.lastPeer:
		c.lastPeer = id
	default:
		found, byUs := c.lookupClosed(id)
		c.mu.Unlock()
		switch {
		case found && byUs:
			c.hb.ignore = true
		case found:
			// RFC 9113 §5.1: closed: frames after END_STREAM or
			// RST_STREAM "MUST" be treated as STREAM_CLOSED.
			return Event{}, connErr(ErrCodeStreamClosed, "h2_headers_on_closed_stream")
		default:
			// RFC 9113 §5.1.1: "The identifier of a newly established
			// stream MUST be numerically greater than all streams that the
			// initiating endpoint has opened" (or, client side: a stream
			// we never opened).
			return Event{}, connErr(ErrCodeProtocol, "h2_stream_id_regressed")
		}
		return c.fragment(id, f.HeaderBlockFragment(), f.HeadersEnded())
	}
	c.mu.Unlock()
	return c.fragment(id, f.HeaderBlockFragment(), f.HeadersEnded())
}

// fragment decodes one fragment of the open header block. Decoding happens
// as frames arrive, so a block never sits encoded in memory; past the
// header-list cap fields are dropped but the HPACK state is kept in step.
func (c *Conn) fragment(id uint32, frag []byte, ended bool) (Event, error) {
	hb := &c.hb
	hb.frags++
	hb.encoded += len(frag)
	if _, err := c.dec.Write(frag); err != nil {
		return Event{}, connErr(ErrCodeCompression, "h2_hpack_decode")
	}
	if !ended {
		return Event{Type: EvHeaderFragment, Stream: id, Frags: hb.frags, Encoded: hb.encoded}, nil
	}
	if err := c.dec.Close(); err != nil {
		return Event{}, connErr(ErrCodeCompression, "h2_hpack_truncated")
	}
	ev, err := c.block()
	ev.Frags, ev.Encoded = hb.frags, hb.encoded
	hb.id = 0
	clear(hb.fields)
	return ev, err
}

// block handles a complete header block.
func (c *Conn) block() (Event, error) {
	hb := &c.hb
	id := hb.id
	if hb.ignore {
		return Event{Type: EvIgnored, Stream: id}, nil
	}
	if hb.pending != nil {
		c.closeStream(id, true)
		return Event{}, hb.pending
	}
	s := c.stream(id)
	if c.role == RoleServer && s == nil {
		return c.openRequest(id)
	}
	if s == nil {
		return Event{}, connErr(ErrCodeProtocol, "h2_headers_unknown_stream")
	}
	if c.role == RoleClient && !s.gotHead {
		return c.response(s)
	}
	// A second block on the stream: trailers.
	// RFC 9113 §8.1: a HEADERS frame after the head "without the
	// END_STREAM flag set ... MUST [be treated] as malformed".
	if !hb.end {
		c.closeStream(id, true)
		return Event{}, streamErr(id, ErrCodeProtocol, "h2_trailers_without_end_stream")
	}
	if hb.tooLarge {
		c.closeStream(id, true)
		return Event{}, streamErr(id, ErrCodeProtocol, "h2_trailers_too_large")
	}
	us := c.Underscore
	if c.role == RoleClient {
		us = frames.UnderscoreAllow // the policy is about requests
	}
	fs, err := DecodeTrailers(id, hb.fields, us)
	if err != nil {
		c.closeStream(id, true)
		return Event{}, err
	}
	if s.declared >= 0 && !s.noBody && s.received != s.declared {
		c.closeStream(id, true)
		return Event{}, streamErr(id, ErrCodeProtocol, "h2_content_length_mismatch")
	}
	c.mu.Lock()
	s.remoteClosed = true
	c.mu.Unlock()
	return Event{Type: EvTrailers, Stream: id, Head: &frames.Head{Fields: fs, ContentLength: -1}, End: true}, nil
}

func (c *Conn) openRequest(id uint32) (Event, error) {
	hb := &c.hb
	s := &Stream{ID: id, Recv: NewWindow(int64(c.Local.InitialWindowSize)), declared: -1, gotHead: true, remoteClosed: hb.end}
	if hb.tooLarge {
		c.register(s)
		return Event{Type: EvHeaders, Stream: id, End: hb.end, Refuse: 431, RefuseReason: "h2_header_list_too_large"}, nil
	}
	h, err := DecodeRequest(id, hb.fields, c.Underscore, c.Local.EnableConnectProtocol)
	if re, ok := err.(*RequestError); ok {
		c.register(s)
		return Event{Type: EvHeaders, Stream: id, End: hb.end, Refuse: re.Status, RefuseReason: re.Reason}, nil
	}
	if err != nil {
		c.closeStream(id, true)
		return Event{}, err
	}
	// RFC 9113 §8.1.1: END_STREAM on the head with a non-zero
	// content-length is a content-length mismatch.
	if hb.end && h.ContentLength > 0 {
		c.closeStream(id, true)
		return Event{}, streamErr(id, ErrCodeProtocol, "h2_content_length_mismatch")
	}
	s.declared = h.ContentLength
	c.register(s)
	return Event{Type: EvHeaders, Stream: id, Head: h, End: hb.end}, nil
}

func (c *Conn) register(s *Stream) {
	c.mu.Lock()
	c.addLocked(s)
	c.mu.Unlock()
}

// addLocked puts s in the stream table, made anew if a quiet connection
// gave it up (dropLocked).
func (c *Conn) addLocked(s *Stream) {
	if c.streams == nil {
		c.streams = map[uint32]*Stream{}
	}
	c.streams[s.ID] = s
}

// dropLocked removes stream id from the table, and the table itself once
// empty: an idle connection keeps no map sized by its last burst.
func (c *Conn) dropLocked(id uint32) {
	if delete(c.streams, id); len(c.streams) == 0 {
		c.streams = nil
	}
}

func (c *Conn) response(s *Stream) (Event, error) {
	hb := &c.hb
	id := s.ID
	if hb.tooLarge {
		c.closeStream(id, true)
		return Event{}, streamErr(id, ErrCodeProtocol, "h2_resp_header_list_too_large")
	}
	h, err := DecodeResponse(id, hb.fields)
	if err != nil {
		c.closeStream(id, true)
		return Event{}, err
	}
	if h.Status < 200 {
		// RFC 9113 §8.1: an informational head never ends the stream.
		if hb.end {
			c.closeStream(id, true)
			return Event{}, streamErr(id, ErrCodeProtocol, "h2_resp_1xx_end_stream")
		}
		return Event{Type: EvHeaders, Stream: id, Head: h}, nil
	}
	s.gotHead = true
	s.declared = h.ContentLength
	if h.Status == 204 || h.Status == 304 {
		s.noBody = true
	}
	if hb.end && h.ContentLength > 0 && !s.noBody {
		c.closeStream(id, true)
		return Event{}, streamErr(id, ErrCodeProtocol, "h2_content_length_mismatch")
	}
	if hb.end {
		c.mu.Lock()
		s.remoteClosed = true
		c.mu.Unlock()
	}
	return Event{Type: EvHeaders, Stream: id, Head: h, End: hb.end}, nil
}

func (c *Conn) settings(f *http2.SettingsFrame) (Event, error) {
	if f.IsAck() {
		return Event{Type: EvSettingsAck}, nil
	}
	c.sawSettings = true
	prev := c.Peer.InitialWindowSize
	if err := f.ForeachSetting(c.Peer.apply); err != nil {
		return Event{}, err
	}
	return Event{Type: EvSettings, Settings: c.Peer, InitialDelta: int64(c.Peer.InitialWindowSize) - int64(prev)}, nil
}

func (c *Conn) windowUpdate(f *http2.WindowUpdateFrame) (Event, error) {
	id := f.StreamID
	if id != 0 {
		c.mu.Lock()
		idle := c.idle(id)
		c.mu.Unlock()
		if idle {
			return Event{}, connErr(ErrCodeProtocol, "h2_window_update_on_idle_stream")
		}
	}
	return Event{Type: EvWindowUpdate, Stream: id, Incr: f.Increment}, nil
}

func (c *Conn) rstStream(f *http2.RSTStreamFrame) (Event, error) {
	id := f.StreamID
	c.mu.Lock()
	s := c.streams[id]
	idle := c.idle(id)
	c.mu.Unlock()
	if s == nil {
		if idle {
			// RFC 9113 §6.4: "If a RST_STREAM frame identifying an idle
			// stream is received, the recipient MUST treat this as a
			// connection error of type PROTOCOL_ERROR."
			return Event{}, connErr(ErrCodeProtocol, "h2_rst_on_idle_stream")
		}
		return Event{Type: EvIgnored, Stream: id}, nil
	}
	c.closeStream(id, false)
	return Event{Type: EvReset, Stream: id, Code: ErrCode(f.ErrCode)}, nil
}

// Open registers a new stream we initiate (client role) and returns it;
// noBody says the response's content-length describes no body (HEAD). It
// returns nil when the stream ids are exhausted.
func (c *Conn) Open(noBody bool) *Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextLocal
	if id > MaxStreamID {
		return nil
	}
	c.nextLocal += 2
	s := &Stream{ID: id, Recv: NewWindow(int64(c.Local.InitialWindowSize)), declared: -1, noBody: noBody}
	c.addLocked(s)
	return s
}

// Forget drops a stream whose exchange is over on our side. If the peer's
// side was still open, the caller has sent RST_STREAM: late frames on it
// are then ignored (RFC 9113 §5.4.2).
func (c *Conn) Forget(id uint32) {
	c.mu.Lock()
	if s, ok := c.streams[id]; ok {
		c.dropLocked(id)
		c.remember(id, !s.remoteClosed)
	}
	c.mu.Unlock()
}

// RemoteOpen reports whether the peer may still send on stream id.
func (c *Conn) RemoteOpen(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	return s != nil && !s.remoteClosed
}

// LastPeerStream is the highest stream id the peer opened (server role):
// the last-stream-id of our GOAWAY.
func (c *Conn) LastPeerStream() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastPeer
}

// NextLocal is the id the next Open would use (client role).
func (c *Conn) NextLocal() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextLocal
}

// UnlimitedStreams is the MaxConcurrentStreams of a peer that announced none.
const UnlimitedStreams = math.MaxUint32

// Stream returns the receive state of stream id, or nil.
func (c *Conn) Stream(id uint32) *Stream { return c.stream(id) }
