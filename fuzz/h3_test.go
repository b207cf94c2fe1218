package fuzz

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
)

// checkH3Err asserts that a decoder failed with ErrShort or a typed verdict
// carrying an h3_ counter token.
func checkH3Err(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, h3.ErrShort) {
		return
	}
	var ce *h3.ConnError
	var se *h3.StreamError
	switch {
	case errors.As(err, &ce):
		if !strings.HasPrefix(ce.Token, "h3_") {
			t.Fatalf("token %q", ce.Token)
		}
	case errors.As(err, &se):
		if !strings.HasPrefix(se.Token, "h3_") {
			t.Fatalf("token %q", se.Token)
		}
	default:
		t.Fatalf("untyped error %v", err)
	}
}

// FuzzH3Frame checks the frame codec: no panic, consumed ≤ input, typed
// errors, a stable parse → append → parse, and Len() == len(Append()) for
// the generic frame and for SETTINGS and GOAWAY.
func FuzzH3Frame(f *testing.F) {
	settings := h3.SettingsFrame{Settings: []h3.Setting{{ID: h3.SettingMaxFieldSectionSize, Value: 65536}, {ID: 0x21, Value: 1}}}
	f.Add(settings.Append(nil))
	f.Add(h3.GoAwayFrame{ID: 400}.Append(nil))
	f.Add(h3.AppendHeadersFrame(nil, []byte{0, 0, 0xd1}))
	f.Add(append(h3.AppendDataHeader(nil, 3), "abc"...))
	f.Add([]byte{0x21, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := h3.ParseFrame(b, h3.MaxControlFramePayload)
		if err != nil {
			checkH3Err(t, err)
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		enc := fr.Append(nil)
		if len(enc) != fr.Len() {
			t.Fatalf("Len %d, Append wrote %d", fr.Len(), len(enc))
		}
		fr2, n2, err := h3.ParseFrame(enc, h3.MaxControlFramePayload)
		if err != nil || n2 != len(enc) || fr2.Type != fr.Type || !bytes.Equal(fr2.Payload, fr.Payload) {
			t.Fatalf("unstable: %v %d %v", fr2, n2, err)
		}
		switch fr.Type {
		case h3.FrameTypeSettings:
			s, err := h3.ParseSettings(fr.Payload)
			if err != nil {
				checkH3Err(t, err)
				return
			}
			enc := s.Append(nil)
			if len(enc) != s.Len() {
				t.Fatalf("settings Len %d, wrote %d", s.Len(), len(enc))
			}
			f2, _, err := h3.ParseFrame(enc, h3.MaxControlFramePayload)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := h3.ParseSettings(f2.Payload)
			if err != nil || len(s2.Settings) != len(s.Settings) {
				t.Fatalf("settings unstable: %v", err)
			}
			for i := range s.Settings {
				if s.Settings[i] != s2.Settings[i] {
					t.Fatal("settings unstable")
				}
			}
		case h3.FrameTypeGoAway:
			g, err := h3.ParseGoAway(fr.Payload)
			if err != nil {
				checkH3Err(t, err)
				return
			}
			if len(g.Append(nil)) != g.Len() {
				t.Fatal("goaway Len")
			}
		}
	})
}

// FuzzH3FieldSection checks the QPACK header path as the front uses it:
// request, response and trailer decoding under a small cap never panic,
// fail only with typed verdicts, produce only clean fields, and what
// decodes re-encodes and decodes the same.
func FuzzH3FieldSection(f *testing.F) {
	e := h3.NewEncoder()
	f.Add(e.AppendRequest(nil, &frames.Head{Method: "GET", Scheme: "https", Authority: "a.example", Path: "/x", ContentLength: -1,
		Fields: frames.Fields{{Name: "accept", Value: "*/*"}, {Name: "cookie", Value: "a=1"}}}))
	f.Add(e.AppendRequest(nil, &frames.Head{Method: "GET", Scheme: "https", Authority: "a.example", Path: "/", ContentLength: -1,
		Fields: frames.Fields{{Name: "x_user", Value: "admin"}, {Name: "x-real", Value: "1"}}}))
	f.Add(e.AppendResponse(nil, &frames.Head{Status: 200, ContentLength: 5, Fields: frames.Fields{{Name: "server", Value: "x"}}}))
	f.Add(e.AppendTrailers(nil, frames.Fields{{Name: "grpc-status", Value: "0"}}))
	f.Add([]byte{0x00, 0x00, 0xc0 | 31, 0xc0 | 31, 0xc0 | 31})
	f.Add([]byte{0x01, 0x00, 0x80})
	lim := &h3.Limits{MaxSize: 4096, MaxFields: 32}
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := h3.DecodeRequest(b, lim); err != nil {
			checkH3Err(t, err)
		} else {
			checkFields(t, h.Fields)
			if h.Fields.Size() > lim.MaxSize {
				t.Fatalf("fields past the cap: %d", h.Fields.Size())
			}
			if h.Fields.Has("host") {
				t.Fatal("host left in fields")
			}
			h2, err := h3.DecodeRequest(e.AppendRequest(nil, h), &h3.Limits{MaxSize: 1 << 20, MaxFields: 1 << 10})
			if err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if h2.Method != h.Method || h2.Path != h.Path || h2.Authority != h.Authority || h2.Scheme != h.Scheme || h2.ContentLength != h.ContentLength {
				t.Fatalf("unstable: %+v → %+v", h, h2)
			}
		}
		for _, p := range []frames.UnderscorePolicy{frames.UnderscoreReject, frames.UnderscoreDrop} {
			if h, err := h3.DecodeRequest(b, &h3.Limits{MaxSize: lim.MaxSize, MaxFields: lim.MaxFields, Underscore: p}); err == nil {
				for _, f := range h.Fields {
					if strings.Contains(f.Name, "_") {
						t.Fatalf("field %q passed the underscore policy %d", f.Name, p)
					}
				}
			}
		}
		if h, err := h3.DecodeResponse(b, lim); err != nil {
			checkH3Err(t, err)
		} else {
			checkFields(t, h.Fields)
			if h.Status < 100 || h.Status > 599 {
				t.Fatalf("status %d", h.Status)
			}
		}
		if fs, err := h3.DecodeTrailers(b, lim); err != nil {
			checkH3Err(t, err)
		} else {
			checkFields(t, fs)
		}
	})
}

// FuzzH3Datagram checks the HTTP Datagram header (RFC 9297 §2.1): no
// panic, a typed H3_DATAGRAM_ERROR verdict, a Quarter Stream ID within
// the legal range, and a stable parse → append → parse.
func FuzzH3Datagram(f *testing.F) {
	f.Add(h3.AppendDatagram(nil, 0, []byte("hello")))
	f.Add(h3.AppendDatagram(nil, 4*h3.MaxQuarterStreamID, nil))
	f.Add([]byte{0x40})
	f.Add([]byte{0xd0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		qid, p, err := h3.ParseDatagram(b)
		if err != nil {
			checkH3Err(t, err)
			var ce *h3.ConnError
			if !errors.As(err, &ce) || ce.Code != h3.ErrCodeDatagramError {
				t.Fatalf("verdict %v, want H3_DATAGRAM_ERROR", err)
			}
			return
		}
		if qid > h3.MaxQuarterStreamID || len(p) > len(b) {
			t.Fatalf("qid %d, payload %d of %d", qid, len(p), len(b))
		}
		enc := h3.AppendDatagram(nil, qid*4, p)
		qid2, p2, err := h3.ParseDatagram(enc)
		if err != nil || qid2 != qid || !bytes.Equal(p2, p) {
			t.Fatalf("re-parse: %d %q %v, want %d %q", qid2, p2, err, qid, p)
		}
	})
}
