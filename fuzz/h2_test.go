package fuzz

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
)

// h2Seed builds a valid frame sequence: SETTINGS, a request or response
// head, DATA, trailers, PING, WINDOW_UPDATE, RST_STREAM, GOAWAY.
func h2Seed(status bool) []byte {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	if status {
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	} else {
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/p"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
	}
	enc.WriteField(hpack.HeaderField{Name: "content-length", Value: "4"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, false, []byte("data"))
	hb.Reset()
	enc.WriteField(hpack.HeaderField{Name: "x-trailer", Value: "t"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	fr.WritePing(false, [8]byte{1})
	fr.WriteWindowUpdate(0, 1000)
	fr.WriteRSTStream(3, http2.ErrCodeCancel)
	fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	return b.Bytes()
}

// drive reads events until an error or maxEvents; it must never panic and
// a connection error must always end the input's processing. Each event
// goes to check, when set.
func drive(t *testing.T, c *h2.Conn, check func(h2.Event)) {
	for range 10_000 {
		ev, err := c.Next()
		if err == nil && check != nil {
			check(ev)
		}
		if err != nil {
			var ce *h2.ConnError
			if errorsAs(err, &ce) || err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
		}
	}
}

func local() h2.Settings {
	s := h2.DefaultSettings()
	s.EnablePush = false
	s.MaxConcurrentStreams = 100
	s.MaxHeaderListSize = h2.DefaultMaxHeaderListSize
	return s
}

// FuzzH2ServerConn feeds arbitrary bytes after the client preface to our
// server connection state machine.
func FuzzH2ServerConn(f *testing.F) {
	f.Add(h2Seed(false))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := h2.NewConn(h2.RoleServer, io.Discard, bytes.NewReader(in), local())
		c.Underscore = frames.UnderscorePolicy(len(in) % 3)
		drive(t, c, func(ev h2.Event) {
			if ev.Type != h2.EvHeaders || ev.Head == nil || c.Underscore == frames.UnderscoreAllow {
				return
			}
			for _, f := range ev.Head.Fields {
				if strings.Contains(f.Name, "_") {
					t.Fatalf("field %q passed the underscore policy %d", f.Name, c.Underscore)
				}
			}
		})
	})
}

// FuzzH2ClientConn feeds arbitrary backend bytes to our client connection
// state machine with three streams open.
func FuzzH2ClientConn(f *testing.F) {
	f.Add(h2Seed(true))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := h2.NewConn(h2.RoleClient, io.Discard, bytes.NewReader(in), local())
		for range 3 {
			c.Open(false)
		}
		drive(t, c, nil)
	})
}

func errorsAs(err error, target **h2.ConnError) bool {
	ce, ok := err.(*h2.ConnError)
	if ok {
		*target = ce
	}
	return ok
}
