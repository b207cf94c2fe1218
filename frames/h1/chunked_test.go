package h1

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/frames"
)

// feed runs d over in, handing it at most step new bytes at a time (as a
// socket would), and returns the payload, the input consumed and the first
// error other than ErrShort.
func feed(d *ChunkedDecoder, in []byte, step int) (data []byte, consumed int, err error) {
	avail := 0
	for !d.Done() {
		p, n, err := d.Decode(in[consumed:avail])
		if n > len(in[consumed:avail]) || len(p) > n {
			panic("consumed more than given")
		}
		data = append(data, p...)
		consumed += n
		switch {
		case err == ErrShort:
			if n != 0 {
				panic("ErrShort with progress")
			}
			if avail == len(in) {
				return data, consumed, ErrShort
			}
			avail = min(avail+step, len(in))
		case err != nil:
			return data, consumed, err
		}
	}
	return data, consumed, nil
}

const chunkedBody = "5\r\nhello\r\n" +
	"1;ext\r\n \r\n" +
	"00b;a=b;c=\"q\\\"x; y\"\r\nworld again\r\n" +
	"A \t; name = value\r\n0123456789\r\n" +
	"0\r\n" +
	"Grpc-Status: 0\r\n" +
	"grpc-message:  all good \r\n" +
	"Content-Length: 99\r\n" +
	"\r\n"

func TestChunkedDecoder_AnySplit(t *testing.T) {
	in := []byte(chunkedBody + "NEXT REQUEST")
	want := "hello world again0123456789"
	for step := 1; step <= len(in); step++ {
		var d ChunkedDecoder
		data, n, err := feed(&d, in, step)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if string(data) != want || n != len(chunkedBody) {
			t.Fatalf("step %d: data %q n %d", step, data, n)
		}
		tr := d.Trailers()
		if len(tr) != 2 || tr[0] != (frames.Field{Name: "grpc-status", Value: "0"}) ||
			tr[1] != (frames.Field{Name: "grpc-message", Value: "all good"}) {
			t.Fatalf("trailers = %q (content-length must be dropped)", tr)
		}
		if _, n, err := d.Decode(in[n:]); err != io.EOF || n != 0 {
			t.Fatalf("after done: n %d err %v", n, err)
		}
	}
}

func TestChunkedDecoder_StrictPrefixIsShort(t *testing.T) {
	in := []byte(chunkedBody)
	for i := range len(in) {
		var d ChunkedDecoder
		_, n, err := feed(&d, in[:i], len(in))
		if err != ErrShort || d.Done() || n > i {
			t.Fatalf("prefix %d: n %d err %v done %v", i, n, err, d.Done())
		}
	}
}

func TestChunkedDecoder_ShortHasNoProgress(t *testing.T) {
	var d ChunkedDecoder
	if _, n, err := d.Decode(nil); err != ErrShort || n != 0 {
		t.Fatalf("empty: n %d err %v", n, err)
	}
	// A complete size line and nothing else: progress, no error.
	data, n, err := d.Decode([]byte("5\r\n"))
	if err != nil || n != 3 || len(data) != 0 {
		t.Fatalf("size line: data %q n %d err %v", data, n, err)
	}
	if _, n, err := d.Decode(nil); err != ErrShort || n != 0 {
		t.Fatalf("in data: n %d err %v", n, err)
	}
}

func TestChunkedDecoder_Rejects(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		dec    ChunkedDecoder
		status int
		token  string
	}{
		{"empty size", "\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_size"},
		{"non-hex size", "g\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_size"},
		{"negative size", "-5\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_size"},
		{"0x prefix", "0x5\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_size"},
		{"plus sign", "+5\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_size"},
		{"bare CR after size", "5\rX\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_bare_cr"},
		{"hex overflow", "1000000000000000\r\n", ChunkedDecoder{}, 400, "h1_chunk_size_overflow"},
		{"hex overflow 64-bit", "ffffffffffffffff1\r\n", ChunkedDecoder{}, 400, "h1_chunk_size_overflow"},
		{"trailing space", "5 \r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_ext"},
		{"empty ext", "5;\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_ext"},
		{"ext without value", "5;a=\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_ext"},
		{"ext bad name", "5;(a)\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_ext"},
		{"ext open quote", "5;a=\"x\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_ext"},
		{"ext junk after value", "5;a=b c\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_ext"},
		{"ext NUL", "5;a=b\x00\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_bad_ext"},
		{"ext too long", "5;a=" + strings.Repeat("b", MaxChunkLineBytes) + "\r\nhello\r\n", ChunkedDecoder{}, 400, "h1_chunk_line_too_long"},
		{"ext too long, incomplete", "5;a=" + strings.Repeat("b", MaxChunkLineBytes), ChunkedDecoder{}, 400, "h1_chunk_line_too_long"},
		// A 16 KiB extension is refused once the line cap is reached.
		{"ext 16 KiB, head of it", "5;a=" + strings.Repeat("b", 16<<10)[:MaxChunkLineBytes], ChunkedDecoder{}, 400, "h1_chunk_line_too_long"},
		// Lines each under the cap, far more framing than data.
		{"ext overhead", strings.Repeat("1;a="+strings.Repeat("b", MaxChunkLineBytes-10)+"\r\nx\r\n", MaxChunkExtBytes/MaxChunkLineBytes+2), ChunkedDecoder{}, 400, "h1_chunk_ext_too_much"},
		{"tiny chunks, ext overhead", strings.Repeat("1;a=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\nx\r\n", MaxChunkExtBytes/16+1), ChunkedDecoder{}, 400, "h1_chunk_ext_too_much"},
		{"bare LF size line", "5\nhello\r\n0\r\n\r\n", ChunkedDecoder{}, 400, "h1_bare_lf"},
		{"data too long", "5\r\nhelloX\r\n0\r\n\r\n", ChunkedDecoder{}, 400, "h1_chunk_no_crlf"},
		{"data LF only", "5\r\nhello\n0\r\n\r\n", ChunkedDecoder{}, 400, "h1_chunk_no_crlf"},
		{"data CR then junk", "5\r\nhello\rX0\r\n\r\n", ChunkedDecoder{}, 400, "h1_chunk_no_crlf"},
		{"data too short", "6\r\nhello\r\n0\r\n\r\n", ChunkedDecoder{}, 400, "h1_chunk_no_crlf"},
		{"trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", ChunkedDecoder{}, 400, "h1_obs_fold"},
		{"trailer leading space", "0\r\n A: b\r\n\r\n", ChunkedDecoder{}, 400, "h1_obs_fold"},
		{"trailer ws before colon", "0\r\nA : b\r\n\r\n", ChunkedDecoder{}, 400, "h1_ws_before_colon"},
		{"trailer no colon", "0\r\nA\r\n\r\n", ChunkedDecoder{}, 400, "h1_no_colon"},
		{"trailer NUL", "0\r\nA: \x00\r\n\r\n", ChunkedDecoder{}, 400, "h1_bad_field_value"},
		{"trailer bare CR", "0\r\nA: b\rc\r\n\r\n", ChunkedDecoder{}, 400, "h1_bare_cr"},
		{"trailer bare LF", "0\r\nA: b\n\r\n", ChunkedDecoder{}, 400, "h1_bare_lf"},
		{"trailer final bare LF", "0\r\nA: b\r\n\n", ChunkedDecoder{}, 400, "h1_bare_lf"},
		{"trailer underscore", "0\r\nA_B: 1\r\n\r\n", ChunkedDecoder{}, 400, "h1_underscore"},
		{"trailer too large", "0\r\nA: " + strings.Repeat("b", 40) + "\r\n\r\n", ChunkedDecoder{MaxTrailerBytes: 32}, 431, "h1_trailer_too_large"},
		{"trailer too large, final CRLF", "0\r\nA: bbbb\r\n\r\n", ChunkedDecoder{MaxTrailerBytes: 10}, 431, "h1_trailer_too_large"},
		{"trailer too many", "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ChunkedDecoder{MaxTrailerFields: 2}, 431, "h1_trailer_too_many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dec
			_, _, err := feed(&d, []byte(tt.in), len(tt.in))
			wantErr(t, err, tt.status, tt.token)
			// The same verdict arrives however the input is split.
			d = tt.dec
			_, _, err = feed(&d, []byte(tt.in), 1)
			wantErr(t, err, tt.status, tt.token)
			var e *Error
			errors.As(err, &e)
			if r := e.ForResponse(); r.Status != 502 || r.Token != "h1_resp_"+tt.token[len("h1_"):] {
				t.Fatalf("response twin = %+v", r)
			}
		})
	}
}

func TestChunkedDecoder_Accepts(t *testing.T) {
	tests := []struct {
		name, in, data string
		dec            ChunkedDecoder
		trailers       frames.Fields
	}{
		{"empty body", "0\r\n\r\n", "", ChunkedDecoder{}, nil},
		{"last chunk with ext", "0;done\r\n\r\n", "", ChunkedDecoder{}, nil},
		{"leading zeros", "0000000000000000000005\r\nhello\r\n0\r\n\r\n", "hello", ChunkedDecoder{}, nil},
		{"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", ChunkedDecoder{}, nil},
		{"ext quoted pair", "1;a=\"\\\\\"\r\nx\r\n0\r\n\r\n", "x", ChunkedDecoder{}, nil},
		{"ext spaces", "1 ; a ; b = c\r\nx\r\n0\r\n\r\n", "x", ChunkedDecoder{}, nil},
		{"ext on every chunk, earned by data", strings.Repeat("10;name=value\r\n0123456789abcdef\r\n", 4*MaxChunkExtBytes) + "0\r\n\r\n",
			strings.Repeat("0123456789abcdef", 4*MaxChunkExtBytes), ChunkedDecoder{}, nil},
		{"one ext at the line cap", "1;a=" + strings.Repeat("b", MaxChunkLineBytes-6) + "\r\nx\r\n0\r\n\r\n", "x", ChunkedDecoder{}, nil},
		{"binary data", "3\r\n\r\n\x00\r\n0\r\n\r\n", "\r\n\x00", ChunkedDecoder{}, nil},
		{"forbidden trailers dropped", "0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-T: 1\r\nTrailer: x\r\n\r\n", "", ChunkedDecoder{},
			fl("x-t", "1")},
		{"underscore dropped", "0\r\nA_B: 1\r\nC: 2\r\n\r\n", "", ChunkedDecoder{Underscore: UnderscoreDrop}, fl("c", "2")},
		{"underscore allowed", "0\r\nA_B: 1\r\n\r\n", "", ChunkedDecoder{Underscore: UnderscoreAllow}, fl("a_b", "1")},
		{"trailer at the cap", "0\r\nA: b\r\n\r\n", "", ChunkedDecoder{MaxTrailerBytes: 8, MaxTrailerFields: 1}, fl("a", "b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dec
			data, n, err := feed(&d, []byte(tt.in), 1)
			if err != nil || string(data) != tt.data || n != len(tt.in) {
				t.Fatalf("data %q n %d err %v", data, n, err)
			}
			tr := d.Trailers()
			if len(tr) != len(tt.trailers) {
				t.Fatalf("trailers %q, want %q", tr, tt.trailers)
			}
			for i := range tr {
				if tr[i] != tt.trailers[i] {
					t.Fatalf("trailers %q, want %q", tr, tt.trailers)
				}
			}
		})
	}
}

func TestChunkedDecoder_Reset(t *testing.T) {
	d := ChunkedDecoder{MaxTrailerFields: 1}
	if _, _, err := feed(&d, []byte("0\r\nA: 1\r\n\r\n"), 100); err != nil || !d.Done() {
		t.Fatal(err)
	}
	d.Reset()
	if d.Done() || len(d.Trailers()) != 0 || d.MaxTrailerFields != 1 {
		t.Fatalf("after Reset: %+v", d)
	}
	data, _, err := feed(&d, []byte("2\r\nok\r\n0\r\n\r\n"), 100)
	if err != nil || string(data) != "ok" {
		t.Fatalf("reuse: %q %v", data, err)
	}
}

func TestChunkedDecoder_DataIsSubsliceOfInput(t *testing.T) {
	in := []byte("5\r\nhello\r\n0\r\n\r\n")
	var d ChunkedDecoder
	data, n, err := d.Decode(in)
	if err != nil || n != 8 || &data[0] != &in[3] {
		t.Fatalf("data %q n %d err %v: not a subslice", data, n, err)
	}
}

func BenchmarkChunkedDecoder(b *testing.B) {
	var in []byte
	payload := bytes.Repeat([]byte("x"), 4096)
	for range 16 {
		in = AppendChunk(in, payload)
	}
	in = AppendLastChunk(in, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var d ChunkedDecoder
		for p := in; !d.Done(); {
			_, n, err := d.Decode(p)
			if err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
	}
}

func TestBodyKind_String(t *testing.T) {
	for k, want := range map[BodyKind]string{BodyNone: "none", BodyLength: "length", BodyChunked: "chunked", BodyClose: "close", 9: "unknown"} {
		if k.String() != want {
			t.Fatalf("%d: %q", k, k.String())
		}
	}
}
