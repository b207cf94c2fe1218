package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// sinkBackend answers "<bytes> <sha256>" of each request body and
// remembers every answer it gave.
type sinkBackend struct {
	mu   sync.Mutex
	seen []string
}

func (s *sinkBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	sum := fmt.Sprintf("%d %x", n, h.Sum(nil))
	s.mu.Lock()
	s.seen = append(s.seen, sum)
	s.mu.Unlock()
	io.WriteString(w, sum)
}

func (s *sinkBackend) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// replayPool is a round-robin pool of a refused port and a live sink, of
// one backend protocol, with the default retry settings (bar a budget
// large enough for every retry here).
func replayPool(t *testing.T, proto string, live *sinkBackend) string {
	addr := ""
	switch proto {
	case "h1":
		addr = backend(t, live)
	case "h2":
		addr = h2cBackend(t, live)
	}
	return fmt.Sprintf("[[pools]]\nname = \"rp\"\n[pools.retry]\nmin_retries_per_sec = 1000\n[[pools.backends]]\naddress = %q\nprotocol = %q\n[[pools.backends]]\naddress = %q\nprotocol = %q\n", deadAddr(t), proto, addr, proto)
}

func postBody(t *testing.T, c *http.Client, url string, payload []byte, chunked bool) (int, string) {
	t.Helper()
	var r io.Reader = bytes.NewReader(payload)
	if chunked {
		r = hideLen{r}
	}
	req, _ := http.NewRequest("POST", url, r)
	if chunked {
		req.ContentLength = -1
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// A POST whose first try finds the backend's port refused is retried on
// the live backend with its whole body (within the default 64 KiB
// max_replay_body_bytes), with a length or chunked, to H1 and H2 backends;
// the live backend receives every byte exactly once.
func TestRetry_SmallPOSTBodyReplayedAfterConnectRefused(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10<<10/16) // 10 KiB
	sum := sha256.Sum256(payload)
	want := fmt.Sprintf("%d %s", len(payload), hex.EncodeToString(sum[:]))
	for _, proto := range []string{"h1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			live := &sinkBackend{}
			g := lbGateway(t, replayPool(t, proto, live), "rp", "")
			c := client(t)
			before := counter(`expressgateway_retries_total{pool="rp"}`)
			const n = 10
			for i := range n {
				if st, body := postBody(t, c, g.url("web"), payload, i%2 == 1); st != 200 || body != want {
					t.Fatalf("POST %d: %d %q, want 200 %q", i, st, body, want)
				}
			}
			if got := live.count(); got != n {
				t.Fatalf("live backend served %d POSTs, want %d", got, n)
			}
			if counter(`expressgateway_retries_total{pool="rp"}`)-before < n/2-1 {
				t.Fatalf("%d retries for %d POSTs over a pool with a dead backend", counter(`expressgateway_retries_total{pool="rp"}`)-before, n)
			}
		})
	}
}

// A body past max_replay_body_bytes is not held: a 1 MiB POST whose try
// hits the refused port fails with 502 and is not retried; one that picks
// the live backend succeeds. With the key at 2 MiB the same POSTs are all
// retried and served.
func TestRetry_BodyOverReplayLimitNotRetried(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 1<<20)
	for _, tc := range []struct {
		name    string
		extra   string
		want502 bool
	}{{"default_64KiB", "", true}, {"limit_2MiB", "max_replay_body_bytes = 2097152\n", false}} {
		t.Run(tc.name, func(t *testing.T) {
			live := &sinkBackend{}
			pool := replayPool(t, "h1", live)
			pool = pool[:len("[[pools]]\nname = \"rp\"\n[pools.retry]\n")] + tc.extra + pool[len("[[pools]]\nname = \"rp\"\n[pools.retry]\n"):]
			g := lbGateway(t, pool, "rp", "")
			c := client(t)
			before := counter(`expressgateway_retries_total{pool="rp"}`)
			var ok, bad int
			for i := range 8 {
				switch st, body := postBody(t, c, g.url("web"), payload, i%2 == 1); st {
				case 200:
					ok++
				case 502:
					bad++
				default:
					t.Fatalf("POST %d: %d %q", i, st, body)
				}
			}
			retries := counter(`expressgateway_retries_total{pool="rp"}`) - before
			t.Logf("%d served, %d 502, %d retries", ok, bad, retries)
			if live.count() != ok {
				t.Fatalf("live backend served %d, client saw %d successes", live.count(), ok)
			}
			if tc.want502 && (bad == 0 || retries != 0) {
				t.Fatalf("1 MiB POSTs over the limit: %d 502s and %d retries, want some 502s and no retry", bad, retries)
			}
			if !tc.want502 && bad != 0 {
				t.Fatalf("1 MiB POSTs under a 2 MiB limit: %d 502s", bad)
			}
		})
	}
}

// refusingH2Backend is a raw HTTP/2 server that reads each request to its
// end (HEADERS and every DATA frame), then refuses it with
// RST_STREAM(REFUSED_STREAM): RFC 9113 §8.7 says such a request was not
// processed. It returns its address and a count of the requests refused.
func refusingH2Backend(t *testing.T) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, preface); err != nil {
					return
				}
				fr := http2.NewFramer(c, c)
				fr.WriteSettings()
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							fr.WriteSettingsAck()
						}
					case *http2.DataFrame:
						if n := len(f.Data()); n > 0 {
							fr.WriteWindowUpdate(0, uint32(n))
							fr.WriteWindowUpdate(f.StreamID, uint32(n))
						}
						if f.StreamEnded() {
							refused.Add(1)
							fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
						}
					}
				}
			})
		}
	})
	return ln.Addr().String(), &refused
}

// A backend that took the whole body and then refused the stream
// (REFUSED_STREAM) never processed it: the POST is retried on the live
// backend with the body it had already streamed, sent again in full.
func TestRetry_BodyReplayedAfterRefusedStream(t *testing.T) {
	refuser, refused := refusingH2Backend(t)
	live := &sinkBackend{}
	pool := fmt.Sprintf("[[pools]]\nname = \"rs2\"\n[pools.retry]\nmin_retries_per_sec = 1000\n[[pools.backends]]\naddress = %q\nprotocol = \"h2\"\n[[pools.backends]]\naddress = %q\nprotocol = \"h2\"\n", refuser, h2cBackend(t, live))
	g := lbGateway(t, pool, "rs2", "")
	c := client(t)
	payload := bytes.Repeat([]byte("refused?"), 40<<10/8) // 40 KiB: several DATA frames
	sum := sha256.Sum256(payload)
	want := fmt.Sprintf("%d %s", len(payload), hex.EncodeToString(sum[:]))
	const n = 8
	for i := range n {
		if st, body := postBody(t, c, g.url("web"), payload, i%2 == 1); st != 200 || body != want {
			t.Fatalf("POST %d: %d %q, want 200 %q (refused %d)", i, st, body, want, refused.Load())
		}
	}
	if refused.Load() == 0 || live.count() != n {
		t.Fatalf("refused %d, live served %d of %d", refused.Load(), live.count(), n)
	}
}
