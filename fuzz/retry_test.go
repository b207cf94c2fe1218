package fuzz

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/quiclb"
)

var fuzzTokenKey = quiclb.TokenKey{31: 1}

// FuzzQUICRetry checks the Retry parser and its integrity tag: no panic,
// ErrShort or a typed verdict, and an accepted Retry rebuilt by
// AppendRetry (when it is one AppendRetry may build) checks again, while
// any single-bit change to it fails its tag.
func FuzzQUICRetry(f *testing.F) {
	odcid, _ := quic.NewConnID([]byte{0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08})
	scid, _ := quic.NewConnID([]byte{0xf0, 0x67, 0xa5, 0x50, 0x2a, 0x42, 0x62, 0xb5})
	for _, v := range []uint32{quic.Version1, quic.Version2} {
		b, _ := quic.AppendRetry(nil, v, quic.ConnID{}, scid, odcid, []byte("token"))
		f.Add(b, odcid.Bytes(), uint16(0))
	}
	f.Add([]byte{0xff, 0, 0, 0, 1, 0, 0}, []byte{}, uint16(3))
	f.Fuzz(func(t *testing.T, b, od []byte, flip uint16) {
		o, err := quic.NewConnID(od)
		if err != nil {
			return
		}
		h, err := quic.ParseRetry(b, o)
		if err != nil {
			if !errors.Is(err, quic.ErrShort) && !quic.IsMalformed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if h.Type != quic.TypeRetry {
			t.Fatalf("ParseRetry accepted a %v", h.Type)
		}
		c := bytes.Clone(b)
		c[int(flip)%len(c)] ^= 1 << (flip >> 13)
		if _, err := quic.ParseRetry(c, o); err == nil && !bytes.Equal(c, b) {
			t.Fatalf("a flipped bit kept the tag: %x", c)
		}
		re, err := quic.AppendRetry(nil, h.Version, h.DCID, h.SCID, o, h.Token)
		if err != nil {
			return // an SCID or token a client would discard
		}
		if _, err := quic.ParseRetry(re, o); err != nil {
			t.Fatalf("a rebuilt Retry fails: %v", err)
		}
	})
}

// FuzzRetryTokenOpen checks the token opener on any bytes: no panic, and
// nothing but ErrBadToken without the key; a token sealed from fuzzed
// fields opens to the same fields.
func FuzzRetryTokenOpen(f *testing.F) {
	tok, _ := quiclb.SealRetryToken(&fuzzTokenKey, quiclb.RetryToken{ServerSees: netip.MustParseAddr("10.0.0.1"), Client: netip.MustParseAddr("10.0.0.2"),
		Issued: time.Unix(1, 0), ODCID: []byte{1, 2, 3, 4, 5, 6, 7, 8}, RSCID: []byte{9}})
	f.Add(tok, []byte{1, 2, 3, 4, 5, 6, 7, 8}, int64(0))
	f.Add([]byte("not a token"), []byte{}, int64(-1))
	f.Fuzz(func(t *testing.T, b, cid []byte, ns int64) {
		if _, err := quiclb.OpenToken(&fuzzTokenKey, b); err != nil && !errors.Is(err, quiclb.ErrBadToken) {
			t.Fatalf("untyped error %v", err)
		}
		if len(cid) > quic.MaxConnIDLen {
			return
		}
		rt := quiclb.RetryToken{ServerSees: netip.MustParseAddr("::ffff:10.0.0.1"), Client: netip.MustParseAddr("2001:db8::9"), Issued: time.Unix(0, ns), ODCID: cid, RSCID: cid}
		s, err := quiclb.SealRetryToken(&fuzzTokenKey, rt)
		if err != nil {
			t.Fatal(err)
		}
		o, err := quiclb.OpenToken(&fuzzTokenKey, s)
		if err != nil || !o.Retry || o.Issued.UnixNano() != ns || !bytes.Equal(o.ODCID, cid) || !bytes.Equal(o.RSCID, cid) || !o.ClientIs(rt.Client) || o.ServerSees != rt.ServerSees {
			t.Fatalf("sealed %+v, opened %+v (%v)", rt, o, err)
		}
	})
}
