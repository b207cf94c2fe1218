package h3

import (
	"io"

	"github.com/expressgateway/expressgateway/frames/quic"
)

// FrameType is an HTTP/3 frame type (RFC 9114 §7.2).
type FrameType uint64

// The frame types of RFC 9114 §11.2.1.
const (
	FrameTypeData        FrameType = 0x00
	FrameTypeHeaders     FrameType = 0x01
	FrameTypeCancelPush  FrameType = 0x03
	FrameTypeSettings    FrameType = 0x04
	FrameTypePushPromise FrameType = 0x05
	FrameTypeGoAway      FrameType = 0x07
	FrameTypeMaxPushID   FrameType = 0x0d
)

// IsReservedH2 reports whether t is an HTTP/2 frame type with no HTTP/3
// meaning (RFC 9114 §7.2.8: "Receipt of these frame types MUST be treated
// as a connection error of type H3_FRAME_UNEXPECTED").
func (t FrameType) IsReservedH2() bool {
	switch t {
	case 0x02, 0x06, 0x08, 0x09:
		return true
	}
	return false
}

// StreamType is the type prefix of a unidirectional stream (RFC 9114 §6.2,
// RFC 9204 §4.2).
type StreamType uint64

// The unidirectional stream types.
const (
	StreamTypeControl      StreamType = 0x00
	StreamTypePush         StreamType = 0x01
	StreamTypeQPACKEncoder StreamType = 0x02
	StreamTypeQPACKDecoder StreamType = 0x03
)

// The setting identifiers we read or send (RFC 9114 §7.2.4.1, RFC 9204 §5,
// RFC 9220 §3, RFC 9297 §2.1.1).
const (
	SettingQPACKMaxTableCapacity uint64 = 0x01
	SettingMaxFieldSectionSize   uint64 = 0x06
	SettingQPACKBlockedStreams   uint64 = 0x07
	SettingEnableConnectProtocol uint64 = 0x08
	SettingH3Datagram            uint64 = 0x33
)

// FrameHeader is a frame's type and payload length.
type FrameHeader struct {
	Type   FrameType
	Length uint64
}

// ParseFrameHeader reads a frame header (RFC 9114 §7.1) at the start of b.
func ParseFrameHeader(b []byte) (FrameHeader, int, error) {
	t, n, err := quic.ParseVarint(b)
	if err != nil {
		return FrameHeader{}, 0, ErrShort
	}
	l, m, err := quic.ParseVarint(b[n:])
	if err != nil {
		return FrameHeader{}, 0, ErrShort
	}
	return FrameHeader{Type: FrameType(t), Length: l}, n + m, nil
}

// Append appends the frame header.
func (h FrameHeader) Append(dst []byte) []byte {
	return quic.AppendVarint(quic.AppendVarint(dst, uint64(h.Type)), h.Length)
}

// Len is the size of the encoded frame header.
func (h FrameHeader) Len() int { return quic.VarintLen(uint64(h.Type)) + quic.VarintLen(h.Length) }

// Frame is a whole frame: its type and its payload, borrowed from the
// parsed input.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// ParseFrame reads one whole frame whose payload is at most maxPayload
// bytes. A longer one is ErrFrameTooLarge without waiting for its bytes.
func ParseFrame(b []byte, maxPayload uint64) (Frame, int, error) {
	h, n, err := ParseFrameHeader(b)
	if err != nil {
		return Frame{}, 0, err
	}
	if h.Length > maxPayload {
		return Frame{}, 0, ErrFrameTooLarge
	}
	if uint64(len(b)-n) < h.Length {
		return Frame{}, 0, ErrShort
	}
	end := n + int(h.Length)
	return Frame{Type: h.Type, Payload: b[n:end]}, end, nil
}

// Append appends the frame.
func (f Frame) Append(dst []byte) []byte {
	dst = FrameHeader{Type: f.Type, Length: uint64(len(f.Payload))}.Append(dst)
	return append(dst, f.Payload...)
}

// Len is the size of the encoded frame.
func (f Frame) Len() int {
	return FrameHeader{Type: f.Type, Length: uint64(len(f.Payload))}.Len() + len(f.Payload)
}

// AppendDataHeader appends the header of a DATA frame of n payload bytes;
// the caller writes the payload after it.
func AppendDataHeader(dst []byte, n int) []byte {
	return FrameHeader{Type: FrameTypeData, Length: uint64(n)}.Append(dst)
}

// AppendHeadersFrame appends a HEADERS frame carrying an encoded field
// section.
func AppendHeadersFrame(dst []byte, section []byte) []byte {
	return Frame{Type: FrameTypeHeaders, Payload: section}.Append(dst)
}

// Setting is one SETTINGS parameter.
type Setting struct {
	ID, Value uint64
}

// SettingsFrame is a SETTINGS frame (RFC 9114 §7.2.4).
type SettingsFrame struct {
	Settings []Setting
}

// ParseSettings decodes a SETTINGS payload.
func ParseSettings(p []byte) (SettingsFrame, error) {
	var s SettingsFrame
	for len(p) > 0 {
		id, n, err := quic.ParseVarint(p)
		if err != nil {
			return SettingsFrame{}, ErrFrameMalformed
		}
		v, m, err := quic.ParseVarint(p[n:])
		if err != nil {
			return SettingsFrame{}, ErrFrameMalformed
		}
		p = p[n+m:]
		// RFC 9114 §7.2.4.1: "setting identifiers that were defined in
		// [HTTP/2] where there is no corresponding HTTP/3 setting ...
		// Receipt of these settings MUST be treated as a connection error
		// of type H3_SETTINGS_ERROR."
		if id >= 0x02 && id <= 0x05 {
			return SettingsFrame{}, ErrSettingsHTTP2
		}
		// RFC 9114 §7.2.4: "The same setting identifier MUST NOT occur more
		// than once in the SETTINGS frame."
		if _, dup := s.Get(id); dup {
			return SettingsFrame{}, ErrSettingsDuplicate
		}
		if len(s.Settings) == MaxSettings {
			return SettingsFrame{}, ErrFrameTooLarge
		}
		s.Settings = append(s.Settings, Setting{ID: id, Value: v})
	}
	return s, nil
}

// Get returns the value of setting id.
func (s *SettingsFrame) Get(id uint64) (uint64, bool) {
	for _, st := range s.Settings {
		if st.ID == id {
			return st.Value, true
		}
	}
	return 0, false
}

func (s *SettingsFrame) payloadLen() int {
	n := 0
	for _, st := range s.Settings {
		n += quic.VarintLen(st.ID) + quic.VarintLen(st.Value)
	}
	return n
}

// Append appends the SETTINGS frame.
func (s *SettingsFrame) Append(dst []byte) []byte {
	dst = FrameHeader{Type: FrameTypeSettings, Length: uint64(s.payloadLen())}.Append(dst)
	for _, st := range s.Settings {
		dst = quic.AppendVarint(quic.AppendVarint(dst, st.ID), st.Value)
	}
	return dst
}

// Len is the size of the encoded SETTINGS frame.
func (s *SettingsFrame) Len() int {
	n := s.payloadLen()
	return FrameHeader{Type: FrameTypeSettings, Length: uint64(n)}.Len() + n
}

// GoAwayFrame is a GOAWAY frame (RFC 9114 §5.2, §7.2.6): from a server, the
// first client-initiated bidirectional stream ID it will not process.
type GoAwayFrame struct {
	ID uint64
}

// ParseGoAway decodes a GOAWAY payload.
func ParseGoAway(p []byte) (GoAwayFrame, error) {
	id, n, err := quic.ParseVarint(p)
	if err != nil || n != len(p) {
		return GoAwayFrame{}, ErrFrameMalformed
	}
	return GoAwayFrame{ID: id}, nil
}

// Append appends the GOAWAY frame.
func (g GoAwayFrame) Append(dst []byte) []byte {
	dst = FrameHeader{Type: FrameTypeGoAway, Length: uint64(quic.VarintLen(g.ID))}.Append(dst)
	return quic.AppendVarint(dst, g.ID)
}

// Len is the size of the encoded GOAWAY frame.
func (g GoAwayFrame) Len() int {
	n := quic.VarintLen(g.ID)
	return FrameHeader{Type: FrameTypeGoAway, Length: uint64(n)}.Len() + n
}

// ReadFrameHeader reads a frame header from r: io.EOF only at a frame
// boundary (the stream ended cleanly between frames).
func ReadFrameHeader(r io.ByteReader) (FrameHeader, error) {
	t, err := quic.ReadVarint(r)
	if err != nil {
		return FrameHeader{}, err
	}
	l, err := quic.ReadVarint(r)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return FrameHeader{Type: FrameType(t), Length: l}, err
}
