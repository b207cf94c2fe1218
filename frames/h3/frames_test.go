package h3

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrame_RoundTripAndTruncatedPrefix(t *testing.T) {
	settings := SettingsFrame{Settings: []Setting{{SettingMaxFieldSectionSize, 65536}, {SettingQPACKMaxTableCapacity, 0}, {0x21, 7}}}
	tests := []struct {
		name string
		b    []byte
		n    int
	}{
		{"data", Frame{Type: FrameTypeData, Payload: []byte("hello")}.Append(nil), Frame{Type: FrameTypeData, Payload: []byte("hello")}.Len()},
		{"headers", AppendHeadersFrame(nil, bytes.Repeat([]byte{0x51}, 300)), 3 + 300},
		{"settings", settings.Append(nil), settings.Len()},
		{"goaway", GoAwayFrame{ID: 1 << 20}.Append(nil), GoAwayFrame{ID: 1 << 20}.Len()},
		{"unknown", Frame{Type: 0x21, Payload: []byte{1, 2}}.Append(nil), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.b) != tt.n {
				t.Fatalf("Len %d, Append wrote %d", tt.n, len(tt.b))
			}
			f, n, err := ParseFrame(tt.b, 1<<20)
			if err != nil || n != len(tt.b) {
				t.Fatalf("ParseFrame: n=%d err=%v", n, err)
			}
			if !bytes.Equal(f.Append(nil), tt.b) {
				t.Fatal("re-append differs")
			}
			for i := range tt.b {
				if _, _, err := ParseFrame(tt.b[:i], 1<<20); !errors.Is(err, ErrShort) {
					t.Fatalf("prefix %d: %v", i, err)
				}
			}
		})
	}
}

func TestSettings_ParseAndVerdicts(t *testing.T) {
	s := SettingsFrame{Settings: []Setting{{SettingMaxFieldSectionSize, 1234}, {SettingH3Datagram, 1}}}
	f, _, err := ParseFrame(s.Append(nil), MaxControlFramePayload)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSettings(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Get(SettingMaxFieldSectionSize); !ok || v != 1234 {
		t.Fatalf("got %v", got)
	}
	dup := (&SettingsFrame{Settings: []Setting{{1, 0}, {1, 0}}}).Append(nil)
	h2 := (&SettingsFrame{Settings: []Setting{{0x4, 100}}}).Append(nil)
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"duplicate":  {dup, ErrSettingsDuplicate},
		"h2 setting": {h2, ErrSettingsHTTP2},
		"truncated":  {[]byte{0x04, 0x01, 0x40}, ErrFrameMalformed},
	} {
		f, _, err := ParseFrame(tc.b, MaxControlFramePayload)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := ParseSettings(f.Payload); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", name, err, tc.want)
		}
	}
	var many SettingsFrame
	for i := range MaxSettings + 1 {
		many.Settings = append(many.Settings, Setting{ID: 0x21 + 0x1f*uint64(i)})
	}
	f, _, _ = ParseFrame(many.Append(nil), MaxControlFramePayload)
	if _, err := ParseSettings(f.Payload); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("settings flood: %v", err)
	}
}

func TestParseFrame_RefusesOversizeBeforeItsBytes(t *testing.T) {
	b := FrameHeader{Type: FrameTypeSettings, Length: MaxControlFramePayload + 1}.Append(nil)
	if _, _, err := ParseFrame(b, MaxControlFramePayload); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err %v", err)
	}
}

func TestFrameType_ReservedH2(t *testing.T) {
	for ft, want := range map[FrameType]bool{0x02: true, 0x06: true, 0x08: true, 0x09: true, 0x00: false, 0x01: false, 0x07: false, 0x21: false} {
		if ft.IsReservedH2() != want {
			t.Fatalf("%#x", uint64(ft))
		}
	}
}

func TestErrCode_Names(t *testing.T) {
	for c, want := range map[ErrCode]string{ErrCodeNoError: "H3_NO_ERROR", ErrCodeExcessiveLoad: "H3_EXCESSIVE_LOAD", ErrCodeVersionFallback: "H3_VERSION_FALLBACK", ErrCodeQPACKDecompressionFailed: "QPACK_DECOMPRESSION_FAILED", 0x999: "H3_UNKNOWN_ERROR"} {
		if c.String() != want {
			t.Fatalf("%#x: %s", uint64(c), c)
		}
	}
}

func BenchmarkParseFrameHeader(b *testing.B) {
	buf := AppendDataHeader(nil, 16384)
	b.ReportAllocs()
	for b.Loop() {
		ParseFrameHeader(buf)
	}
}

func TestReadFrameHeaderFromAStream(t *testing.T) {
	b := FrameHeader{Type: FrameTypeData, Length: 70000}.Append(nil)
	h, err := ReadFrameHeader(bytes.NewReader(b))
	if err != nil || h.Type != FrameTypeData || h.Length != 70000 {
		t.Fatalf("got %+v %v", h, err)
	}
	if _, err := ReadFrameHeader(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
	for i := 1; i < len(b); i++ {
		if _, err := ReadFrameHeader(bytes.NewReader(b[:i])); err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: %v, want io.ErrUnexpectedEOF", i, err)
		}
	}
}
