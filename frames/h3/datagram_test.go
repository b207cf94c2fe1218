package h3

import (
	"bytes"
	"errors"
	"testing"
)

func TestDatagramRoundTrip(t *testing.T) {
	for _, id := range []uint64{0, 4, 400, 1 << 20, 4 * MaxQuarterStreamID} {
		b := AppendDatagram(nil, id, []byte("payload"))
		qid, p, err := ParseDatagram(b)
		if err != nil || qid != id/4 || !bytes.Equal(p, []byte("payload")) {
			t.Fatalf("stream %d: qid %d payload %q err %v", id, qid, p, err)
		}
	}
	// An empty payload is a legal datagram: the ID alone.
	if qid, p, err := ParseDatagram([]byte{0x01}); err != nil || qid != 1 || len(p) != 0 {
		t.Fatalf("ID only: %d %q %v", qid, p, err)
	}
}

func TestDatagramMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":             nil,
		"truncated varint":  {0x40},
		"past 2^60-1":       {0xd0, 0, 0, 0, 0, 0, 0, 0}, // 2^60
		"largest varint":    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"eight-byte cut at": {0xc0, 0, 0},
	} {
		_, _, err := ParseDatagram(b)
		var ce *ConnError
		if !errors.As(err, &ce) || ce.Code != ErrCodeDatagramError {
			t.Errorf("%s: %v, want H3_DATAGRAM_ERROR", name, err)
		}
	}
}

func TestDatagramSetting(t *testing.T) {
	for _, tc := range []struct {
		settings []Setting
		quic     bool
		want     bool
		code     ErrCode
	}{
		{nil, false, false, 0},
		{nil, true, false, 0},
		{[]Setting{{SettingH3Datagram, 0}}, true, false, 0},
		{[]Setting{{SettingH3Datagram, 1}}, true, true, 0},
		// RFC 9297 §2.1.1: H3_DATAGRAM=1 without QUIC datagram support.
		{[]Setting{{SettingH3Datagram, 1}}, false, false, ErrCodeSettingsError},
		{[]Setting{{SettingH3Datagram, 2}}, true, false, ErrCodeSettingsError},
	} {
		s := SettingsFrame{Settings: tc.settings}
		got, err := DatagramSetting(&s, tc.quic)
		var ce *ConnError
		switch {
		case tc.code != 0 && (!errors.As(err, &ce) || ce.Code != tc.code):
			t.Errorf("%v quic=%v: %v, want %v", tc.settings, tc.quic, err, tc.code)
		case tc.code == 0 && (err != nil || got != tc.want):
			t.Errorf("%v quic=%v: %v %v, want %v", tc.settings, tc.quic, got, err, tc.want)
		}
	}
}
