package h2

import (
	"bytes"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/frames"
)

// Writer is the send side of one connection: HPACK encoding of neutral
// heads and the frames that carry them. It is owned by one goroutine (the
// connection's writer); the Framer's read side may run concurrently.
type Writer struct {
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
	// MaxFrame is the peer's SETTINGS_MAX_FRAME_SIZE.
	MaxFrame uint32
}

// NewWriter returns the send side writing through c's Framer.
func NewWriter(c *Conn) *Writer {
	w := &Writer{fr: c.fr, MaxFrame: DefaultMaxFrameSize}
	w.enc = hpack.NewEncoder(&w.buf)
	return w
}

// Framer returns the Framer, for control frames (SETTINGS, PING, GOAWAY,
// RST_STREAM, WINDOW_UPDATE, DATA), written as the Framer documents.
func (w *Writer) Framer() *http2.Framer { return w.fr }

// ApplyPeer follows the peer's new settings: its frame size and the
// dynamic table size our encoder may use (RFC 7541 §4.2).
func (w *Writer) ApplyPeer(s Settings) {
	w.MaxFrame = s.MaxFrameSize
	w.enc.SetMaxDynamicTableSizeLimit(min(s.HeaderTableSize, DefaultHeaderTableSize))
}

// skipField reports whether a neutral field must not be encoded in HTTP/2:
// connection-specific fields (RFC 9113 §8.2.2), host (carried by
// :authority) and content-length (written from Head.ContentLength).
func skipField(f *frames.Field) bool {
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "content-length":
		return true
	case "te":
		return f.Value != "trailers"
	}
	return false
}

func (w *Writer) field(name, value string) {
	w.enc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

func (w *Writer) fields(fs frames.Fields) {
	for i := range fs {
		if !skipField(&fs[i]) {
			w.field(fs[i].Name, fs[i].Value)
		}
	}
}

// EncodeRequest returns the header block of a request head; scheme
// overrides h.Scheme when set. The result is valid until the next Encode.
func (w *Writer) EncodeRequest(h *frames.Head, scheme string) []byte {
	w.buf.Reset()
	if scheme == "" {
		scheme = h.Scheme
	}
	// RFC 9113 §8.5: a plain CONNECT has no :scheme or :path; RFC 8441 §4:
	// an extended one (with :protocol) has both.
	full := h.Method != "CONNECT" || h.Protocol != ""
	w.field(":method", h.Method)
	if h.Protocol != "" && h.Method == "CONNECT" {
		w.field(":protocol", h.Protocol)
	}
	if full {
		w.field(":scheme", scheme)
	}
	if h.Authority != "" {
		w.field(":authority", h.Authority)
	}
	if full {
		w.field(":path", h.Path)
	}
	w.fields(h.Fields)
	if h.ContentLength > 0 || h.ContentLength == 0 && bodyMethod(h.Method) {
		w.field("content-length", strconv.FormatInt(h.ContentLength, 10))
	}
	return w.buf.Bytes()
}

func bodyMethod(m string) bool { return m == "POST" || m == "PUT" || m == "PATCH" }

// EncodeResponse returns the header block of a response head.
func (w *Writer) EncodeResponse(h *frames.Head) []byte {
	w.buf.Reset()
	w.field(":status", strconv.Itoa(h.Status))
	w.fields(h.Fields)
	if h.ContentLength >= 0 && h.Status >= 200 && h.Status != 204 && h.Status != 304 {
		w.field("content-length", strconv.FormatInt(h.ContentLength, 10))
	}
	return w.buf.Bytes()
}

// EncodeTrailers returns the header block of a trailer section.
func (w *Writer) EncodeTrailers(fs frames.Fields) []byte {
	w.buf.Reset()
	w.fields(fs)
	return w.buf.Bytes()
}

// WriteBlock writes a header block as HEADERS plus as many CONTINUATION
// frames as the peer's frame size needs.
func (w *Writer) WriteBlock(id uint32, block []byte, end bool) error {
	max := int(w.MaxFrame)
	first := block
	if len(first) > max {
		first = block[:max]
	}
	rest := block[len(first):]
	err := w.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(rest) == 0})
	for err == nil && len(rest) > 0 {
		n := min(len(rest), max)
		err = w.fr.WriteContinuation(id, n == len(rest), rest[:n])
		rest = rest[n:]
	}
	return err
}

// WriteCtrl writes a control frame of the send engine; a SETTINGS ACK
// applies the peer settings it acknowledges to the encoder first.
func (w *Writer) WriteCtrl(c *Ctrl) error {
	switch c.Kind {
	case CtrlSettings:
		return w.WriteSettings(c.Settings)
	case CtrlSettingsAck:
		w.ApplyPeer(c.Settings)
		return w.fr.WriteSettingsAck()
	case CtrlPing:
		return w.fr.WritePing(false, c.Ping)
	case CtrlPingAck:
		return w.fr.WritePing(true, c.Ping)
	case CtrlRST:
		return w.fr.WriteRSTStream(c.ID, http2.ErrCode(c.Code))
	case CtrlGoAway:
		return w.fr.WriteGoAway(c.ID, http2.ErrCode(c.Code), []byte(c.Debug))
	case CtrlWindow:
		return w.fr.WriteWindowUpdate(c.ID, c.N)
	}
	return nil
}

// WriteSettings announces our settings.
func (w *Writer) WriteSettings(s Settings) error { return w.fr.WriteSettings(s.List()...) }
