package pipeline

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/expressgateway/expressgateway/conf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The metrics package and net/http's test servers keep these.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// testGateway is a running gateway on ephemeral loopback ports.
type testGateway struct {
	*Gateway
	cancel context.CancelFunc
}

// startGateway loads a TOML config (listener addresses may use port 0),
// starts it, and drains it when the test ends.
func startGateway(t testing.TB, toml string) *testGateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "eg.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := zerolog.New(io.Discard)
	if testing.Verbose() {
		log = zerolog.New(zerolog.NewTestWriter(t))
	}
	g, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	// The access log goes where the test's log goes, not to stderr.
	if testing.Verbose() {
		g.SetAccessLogOutput(zerolog.NewTestWriter(t))
	} else {
		g.SetAccessLogOutput(io.Discard)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := g.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	tg := &testGateway{Gateway: g, cancel: cancel}
	t.Cleanup(func() {
		g.Drain(2 * time.Second)
		cancel()
	})
	return tg
}

// url returns http://ADDR for the named listener.
func (g *testGateway) url(name string) string { return "http://" + g.Addr(name).String() }

// backend starts a real net/http backend on loopback.
func backend(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// client returns an HTTP/1.1 client whose idle connections close with the test.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// h1Listener is a config snippet for an h1 listener on an ephemeral port.
func h1Listener(name, extra string) string {
	return "[[listeners]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:0\"\nprotocol = \"h1\"\n" + strings.TrimSpace(extra) + "\n"
}

// metricValue is the value of one series (name and labels, exactly as
// exposed) in the process's metrics, 0 when absent. Series are
// process-wide: a test compares values before and after what it does.
func metricValue(series string) float64 {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	for _, ln := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(ln, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
