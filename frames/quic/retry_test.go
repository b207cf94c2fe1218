package quic

import (
	"bytes"
	"errors"
	"testing"
)

// The Retry samples of RFC 9001 Appendix A.4 (version 1) and RFC 9369
// Appendix A.4 (version 2): the server's Retry to the client Initial of
// Appendix A.2, whose DCID was 8394c8f03e515708.
var retrySamples = []struct {
	v   uint32
	hex string
}{
	{Version1, "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba"},
	{Version2, "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6"},
}

func TestRetry_RFCSamples(t *testing.T) {
	odcid := cid(t, "8394c8f03e515708")
	for _, s := range retrySamples {
		want := mustHex(t, s.hex)
		tag := RetryIntegrityTag(s.v, odcid, want[:len(want)-RetryIntegrityTagLen])
		if !bytes.Equal(tag[:], want[len(want)-RetryIntegrityTagLen:]) {
			t.Fatalf("version %#x: tag %x, want %x", s.v, tag, want[len(want)-RetryIntegrityTagLen:])
		}
		got, err := AppendRetry(nil, s.v, ConnID{}, cid(t, "f067a5502a4262b5"), odcid, []byte("token"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("version %#x: AppendRetry = %x, %v; want %x", s.v, got, err, want)
		}
		h, err := ParseRetry(want, odcid)
		if err != nil || h.Version != s.v || h.SCID != cid(t, "f067a5502a4262b5") || string(h.Token) != "token" {
			t.Fatalf("version %#x: ParseRetry = %+v, %v", s.v, h, err)
		}
	}
}

// A Retry checked against another ODCID, or with any byte changed, fails
// its tag; a v1 tag does not pass as v2.
func TestRetry_TagBindsEveryByteAndTheODCID(t *testing.T) {
	odcid := cid(t, "8394c8f03e515708")
	b := mustHex(t, retrySamples[0].hex)
	if _, err := ParseRetry(b, cid(t, "8394c8f03e515709")); !errors.Is(err, ErrRetryTagMismatch) {
		t.Fatalf("another ODCID: %v", err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := ParseRetry(c, odcid); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	v1tag := RetryIntegrityTag(Version1, odcid, b[:len(b)-16])
	v2tag := RetryIntegrityTag(Version2, odcid, b[:len(b)-16])
	if v1tag == v2tag {
		t.Fatal("versions 1 and 2 share a tag")
	}
}

func TestRetry_AppendRefusesWhatClientsDiscard(t *testing.T) {
	odcid := cid(t, "8394c8f03e515708")
	scid := cid(t, "f067a5502a4262b5")
	for _, c := range []struct {
		v     uint32
		scid  ConnID
		token []byte
		want  error
	}{
		{0xff00001d, scid, []byte("t"), ErrRetryVersion},
		{Version1, ConnID{}, []byte("t"), ErrRetrySCID},
		{Version1, odcid, []byte("t"), ErrRetrySCID},
		{Version1, scid, nil, ErrRetryToken},
	} {
		if out, err := AppendRetry([]byte{9}, c.v, ConnID{}, c.scid, odcid, c.token); !errors.Is(err, c.want) || !bytes.Equal(out, []byte{9}) {
			t.Fatalf("%+v: %x, %v", c, out, err)
		}
	}
	if _, err := ParseRetry(mustHex(t, "c300000001088394c8f03e5157080000449e00000002"), odcid); err == nil {
		t.Fatal("ParseRetry took an Initial")
	}
}
