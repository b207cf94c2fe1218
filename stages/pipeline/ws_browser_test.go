package pipeline

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/coder/websocket"
)

// wsPage opens a WebSocket back to the host that served it, sends a
// message, and reports the echo (or the failure) to /result.
const wsPage = `<!doctype html><title>ws</title><script>
const s = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo');
const report = v => fetch('/result?v=' + encodeURIComponent(v));
s.onopen = () => s.send('hello from chromium');
s.onmessage = e => { report('echo:' + e.data); s.close(1000); };
s.onerror = () => report('error');
</script>`

// TestWS_ChromiumEchoesThroughH1AndH1s runs headless Chromium against a
// page served through the gateway: its WebSocket to the same origin works
// over an h1 listener (an HTTP/1.1 upgrade) and over an h1s one, where
// Chromium speaks HTTP/2 for the page and, the gateway advertising
// SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441's extended CONNECT for the
// socket on the same connection; the metrics name the protocol each used.
func TestWS_ChromiumEchoesThroughH1AndH1s(t *testing.T) {
	bin := tool(t, "chromium")
	results := make(chan string, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/html")
		w.Write([]byte(wsPage))
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		results <- r.URL.Query().Get("v")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, b, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, b)
		c.Read(r.Context())
	})
	be := backend(t, mux)
	cert, key := writeCert(t, t.TempDir(), "localhost")
	backends := "[[listeners.backends]]\naddress = \"" + be + "\"\nprotocol = \"h1\"\n"
	g := startGateway(t, h1Listener("web", backends)+`
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
`+backends)
	for _, u := range []string{
		"http://" + g.Addr("web").String() + "/page",
		"https://localhost:" + portOf(g.Addr("tls").String()) + "/page",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu",
			"--ignore-certificate-errors", "--no-first-run", "--user-data-dir="+t.TempDir(),
			"--host-resolver-rules=MAP localhost 127.0.0.1", u)
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		select {
		case v := <-results:
			if v != "echo:hello from chromium" {
				t.Errorf("%s: page reported %q", u, v)
			}
		case <-ctx.Done():
			t.Errorf("%s: no result from the page", u)
		}
		cmd.Process.Kill() // this test's own child, by PID
		cmd.Wait()
		cancel()
	}
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for l, proto := range map[string]string{"web": "HTTP/1.1", "tls": "HTTP/2"} {
		series := `expressgateway_websocket_tunnels_opened_total{listener="` + l + `",backend="` + be + `",protocol="` + proto + `"} 1`
		if !strings.Contains(buf.String(), series) {
			t.Errorf("metrics lack %s", series)
		}
	}
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
