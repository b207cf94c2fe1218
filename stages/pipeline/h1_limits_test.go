package pipeline

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestH1_KeepAliveRequestCapClosesAfterTheLastOne(t *testing.T) {
	g := startGateway(t, `
[runtime]
max_keepalive_requests = 3
`+h1Listener("web", `
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		if want := i == 3; resp.Close != want {
			t.Fatalf("request %d: Connection: close = %v, want %v", i, resp.Close, want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after the cap: %v", err)
	}
}

func TestH1_ClientThatStopsReadingIsClosedAtTheWriteTimeout(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 64 { // 64 MiB: far more than the socket buffers hold
			if _, err := io.WriteString(w, big); err != nil {
				return
			}
		}
	}))
	g := startGateway(t, h1Listener("web", `
[listeners.http]
write_timeout_ms = 300
[[listeners.backends]]
address = "`+be+`"`))
	conn, err := net.Dial("tcp", g.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read nothing: the gateway's writes stall, and past the write timeout
	// it must let go of the connection (what the kernel still holds in its
	// buffers is the kernel's business).
	deadline := time.Now().Add(10 * time.Second)
	for g.activeConns("web") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the gateway kept a stalled client connection open")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// activeConns is the listener's open client connections.
func (g *testGateway) activeConns(name string) int64 {
	for _, l := range g.listeners {
		if l.cfg.Name == name {
			return l.conns.Load()
		}
	}
	return -1
}

func TestH1_CurlThroughTheGateway(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("EG_REQUIRE_TOOLS") == "1" {
			t.Fatal("curl is required (EG_REQUIRE_TOOLS=1)")
		}
		t.Skip("curl not installed")
	}
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "got %d", n)
			return
		}
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`))
	out, err := exec.Command(curl, "-sS", "--http1.1", "-i", g.url("web")+"/curl").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "HTTP/1.1 200") || !strings.HasSuffix(string(out), "hello /curl") {
		t.Fatalf("curl GET:\n%s", out)
	}
	out, err = exec.Command(curl, "-sS", "--http1.1", "-H", "Expect: 100-continue", "--data-binary", strings.Repeat("p", 100000), g.url("web")+"/echo").CombinedOutput()
	if err != nil || string(out) != "got 100000" {
		t.Fatalf("curl POST with Expect: %v, %q", err, out)
	}
}
