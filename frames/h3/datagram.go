package h3

import (
	"github.com/expressgateway/expressgateway/frames/quic"
)

// ErrCodeDatagramError is H3_DATAGRAM_ERROR (RFC 9297 §5.2).
const ErrCodeDatagramError ErrCode = 0x33

// MaxQuarterStreamID is the largest legal Quarter Stream ID: the largest
// QUIC stream ID, 2^62-1, divided by four (RFC 9297 §2.1).
const MaxQuarterStreamID = 1<<60 - 1

var (
	// ErrDatagramMalformed: a QUIC DATAGRAM too short to hold a Quarter
	// Stream ID, or one past MaxQuarterStreamID (RFC 9297 §2.1: "MUST be
	// treated as an HTTP/3 connection error of type H3_DATAGRAM_ERROR").
	ErrDatagramMalformed = connErr(ErrCodeDatagramError, "h3_datagram_malformed", "malformed HTTP/3 datagram")
	// ErrDatagramSetting: SETTINGS_H3_DATAGRAM with a value other than 0
	// or 1 (RFC 9297 §2.1.1).
	ErrDatagramSetting = connErr(ErrCodeSettingsError, "h3_datagram_setting", "SETTINGS_H3_DATAGRAM not 0 or 1")
	// ErrDatagramWithoutQUIC: SETTINGS_H3_DATAGRAM=1 from a peer that did
	// not offer QUIC datagrams (RFC 9297 §2.1.1: "MUST ... treat ... as a
	// connection error of type H3_SETTINGS_ERROR").
	ErrDatagramWithoutQUIC = connErr(ErrCodeSettingsError, "h3_datagram_without_quic", "SETTINGS_H3_DATAGRAM without QUIC datagram support")
)

// ParseDatagram splits the payload of a QUIC DATAGRAM frame into the HTTP
// Datagram's Quarter Stream ID and its payload (RFC 9297 §2.1). The payload
// is borrowed from b.
func ParseDatagram(b []byte) (qid uint64, payload []byte, err error) {
	v, n, err := quic.ParseVarint(b)
	if err != nil || v > MaxQuarterStreamID {
		return 0, nil, ErrDatagramMalformed
	}
	return v, b[n:], nil
}

// AppendDatagram appends an HTTP Datagram bound to the request stream
// streamID (a client-initiated bidirectional stream, so a multiple of 4).
func AppendDatagram(dst []byte, streamID uint64, payload []byte) []byte {
	return append(quic.AppendVarint(dst, streamID/4), payload...)
}

// DatagramSetting reads SETTINGS_H3_DATAGRAM from a peer's SETTINGS: whether
// it takes HTTP Datagrams. quicDatagrams is whether the peer offered QUIC
// datagrams (its max_datagram_frame_size transport parameter).
func DatagramSetting(s *SettingsFrame, quicDatagrams bool) (bool, error) {
	v, _ := s.Get(SettingH3Datagram)
	switch {
	case v > 1:
		return false, ErrDatagramSetting
	case v == 1 && !quicDatagrams:
		return false, ErrDatagramWithoutQUIC
	}
	return v == 1, nil
}
