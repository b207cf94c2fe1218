package pipeline

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/frames"
)

// earlyHints answers every request with 100 Continue, then 103 Early Hints
// carrying a Link preload, then 200 "done".
func earlyHints() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusContinue)
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("X-Final", "yes")
		w.WriteHeader(200)
		io.WriteString(w, "done")
	})
}

// interimBackend starts an earlyHints backend of one protocol and returns
// it as the matrix fronts take it.
func interimBackend(t *testing.T, proto string) *matrixBackend {
	b := &matrixBackend{proto: proto}
	switch proto {
	case "h1":
		b.conf = "address = \"" + backend(t, earlyHints()) + "\"\nprotocol = \"h1\""
	case "h2":
		b.conf = "address = \"" + h2cBackend(t, earlyHints()) + "\"\nprotocol = \"h2\""
	case "h3":
		addr, cert := h3Backend(t, earlyHints())
		b.conf = "address = \"" + addr + "\"\nprotocol = \"h3\"\ntls_ca_path = \"" + cert + "\"\ntls_verify_hostname = \"localhost\""
	}
	return b
}

// In all nine cells, the backend's 100 and 103 (with its Link field)
// reach the client as interim responses, in order and before the final
// 200, which does not carry the hint.
func TestInterim_EarlyHintsReachTheClientInEveryCell(t *testing.T) {
	for _, front := range []string{"h1", "h2", "h3"} {
		for _, back := range []string{"h1", "h2", "h3"} {
			t.Run(front+"_to_"+back, func(t *testing.T) {
				fr := startMatrixFront(t, front, interimBackend(t, back))
				var (
					mu    sync.Mutex
					codes []int
					links []string
				)
				trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					mu.Lock()
					defer mu.Unlock()
					codes = append(codes, code)
					if code == http.StatusEarlyHints {
						links = append(links, h.Get("Link"))
					}
					return nil
				}}
				req, _ := http.NewRequest("GET", fr.big+"/hints", nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, err := fr.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode != 200 || string(body) != "done" || resp.Header.Get("X-Final") != "yes" {
					t.Fatalf("final: %d %q %v", resp.StatusCode, body, resp.Header)
				}
				if !slices.Equal(codes, []int{100, 103}) {
					t.Fatalf("interim responses %v, want [100 103]", codes)
				}
				if len(links) != 1 || links[0] != "</style.css>; rel=preload; as=style" {
					t.Fatalf("103 Link %q", links)
				}
				if resp.Header.Get("Link") != "" {
					t.Fatalf("final response carries the hint: %v", resp.Header)
				}
			})
		}
	}
}

// A backend that sends more 1xx heads than frames.MaxInterimResponses
// before its final head is malformed: the client gets 502 after at most
// that many interim responses per try.
func TestInterim_EndlessEarlyHintsAre502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
				bufio.NewReader(c).ReadString('\n')
				hint := "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"
				c.Write([]byte(strings.Repeat(hint, frames.MaxInterimResponses+1) + "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
				io.Copy(io.Discard, c)
			})
		}
	})
	g := startGateway(t, h1Listener("web", "[[listeners.backends]]\naddress = \""+ln.Addr().String()+"\"\nprotocol = \"h1\""))
	// net/http's client stops at 5 interim responses itself: a raw client
	// reads the status lines.
	c, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A POST, so that the malformed response is not retried (each try
	// has its own cap).
	c.Write([]byte("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	hints := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d hints: %v", hints, err)
		}
		if strings.HasPrefix(line, "HTTP/1.1 103") {
			hints++
			continue
		}
		if strings.HasPrefix(line, "HTTP/1.1 ") {
			if !strings.HasPrefix(line, "HTTP/1.1 502") || hints > frames.MaxInterimResponses {
				t.Fatalf("final %q after %d hints, want 502 after ≤ %d", line, hints, frames.MaxInterimResponses)
			}
			return
		}
	}
}
