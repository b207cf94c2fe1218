package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

// promtool returns the path of Prometheus's promtool (Debian's prometheus
// package), skipping when it is missing unless EG_REQUIRE_TOOLS=1.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("EG_REQUIRE_TOOLS") == "1" {
			t.Fatal("promtool is required (EG_REQUIRE_TOOLS=1) but missing")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	return p
}

// scrapeAfterMixedTraffic boots the binary with HTTP, HTTPS, QUIC and TCP
// listeners, a healthy pool and a dead one, sends a mix of requests (200,
// 404, a direct response, 503 from the dead pool, H2, H3, a relayed TCP
// connection) and returns the admin listener's /metrics body.
func scrapeAfterMixedTraffic(t *testing.T) string {
	t.Helper()
	bin := buildBinary(t)
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site")
	be := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/missing" {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, "ok")
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}()
	tcpBackend := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		t.Cleanup(func() { ln.Close() })
		return ln.Addr().String()
	}()
	dead := freePort(t) // closed: connects are refused
	web, web2, tcp, admin := freePort(t), freePort(t), freePort(t), freePort(t)
	cfgPath := filepath.Join(dir, "eg.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
[observability]
metrics_bind = %[1]q

[[listeners]]
name = "web"
address = %[2]q
protocol = "h1"
pool = "app"
[[listeners.routes]]
name = "direct"
path_prefix = "/direct"
direct_response = { status = 200, body = "direct" }
[[listeners.routes]]
name = "dead"
path_prefix = "/dead/"
pool = "dead"

[[listeners]]
name = "secure"
address = %[3]q
protocol = "h1s"
pool = "app"
[listeners.tls]
cert_path = %[4]q
key_path = %[5]q

[[listeners]]
name = "h3"
address = %[3]q
protocol = "quic"
pool = "app"
[listeners.quic]
cert_path = %[4]q
key_path = %[5]q
retry_secret_path = %[6]q

[[listeners]]
name = "relay"
address = %[7]q
protocol = "tcp"
pool = "echo"

[[pools]]
name = "app"
[[pools.backends]]
address = %[8]q
protocol = "h1"
[pools.health_check]
type = "tcp"
interval_ms = 200
timeout_ms = 200

[[pools]]
name = "dead"
[[pools.backends]]
address = %[9]q
protocol = "h1"
[pools.health_check]
type = "tcp"
interval_ms = 200
timeout_ms = 200

[[pools]]
name = "echo"
[[pools.backends]]
address = %[10]q

[passthrough]
name = "quic-pt"
bind_addr = "127.0.0.1:0"
backends = [%[9]q]
`, admin, web, web2, cert, key, filepath.Join(dir, "retry.key"), tcp, be, dead, tcpBackend)), 0o600)
	cmd := exec.Command(bin, cfgPath)
	cmd.Env = append(cleanEnv(), "EG_LOG_FORMAT=text")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	tlsConf := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}
	pemBytes, _ := os.ReadFile(cert)
	tlsConf.RootCAs.AppendCertsFromPEM(pemBytes)
	h1 := &http.Transport{}
	h2 := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	h3 := &http3.Transport{TLSClientConfig: tlsConf}
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	defer h3.Close()
	get := func(rt http.RoundTripper, url string) int {
		t.Helper()
		for range 50 {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = "localhost"
			resp, err := (&http.Client{Transport: rt, Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		t.Fatalf("no answer from %s; logs:\n%s", url, logs.String())
		return 0
	}
	for _, c := range []struct {
		rt   http.RoundTripper
		url  string
		want int
	}{
		{h1, "http://" + web + "/", 200},
		{h1, "http://" + web + "/missing", 404},
		{h1, "http://" + web + "/direct", 200},
		{h1, "http://" + web + "/dead/x", 0}, // 502 or 503: connect refused, or the pool is down
		{h2, "https://" + web2 + "/", 200},
		{h3, "https://" + web2 + "/", 200},
	} {
		if got := get(c.rt, c.url); c.want != 0 && got != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, got, c.want)
		} else if c.want == 0 && got/100 != 5 {
			t.Errorf("GET %s: %d, want a 5xx", c.url, got)
		}
	}
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("tcp relay: %q %v", buf, err)
	}
	c.Close()
	// The dead pool's backend is judged down by its first check.
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, `expressgateway_pool_healthy_backends{pool="dead"} 0`) &&
			strings.Contains(body, `expressgateway_l4_bytes_total{listener="relay"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return body
}

// families returns the metric families of a scrape, by their # TYPE lines.
func families(body string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(body) {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(strings.TrimSpace(f), " ")
			out[name] = typ
		}
	}
	return out
}

// The admin listener's /metrics after mixed traffic passes promtool's
// exposition check (format and lint), every family of the gateway's own
// is expressgateway_-prefixed with metadata, durations are le histograms,
// and the series operators alert on are there.
func TestMetrics_ScrapePassesPromtool(t *testing.T) {
	pt := promtool(t)
	body := scrapeAfterMixedTraffic(t)
	cmd := exec.Command(pt, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	fams := families(body)
	for line := range strings.Lines(body) {
		if h, ok := strings.CutPrefix(line, "# HELP expressgateway_"); ok {
			if fam, text, _ := strings.Cut(strings.TrimSpace(h), " "); text == "expressgateway_"+fam+"." {
				t.Errorf("expressgateway_%s has no help text of its own", fam)
			}
		}
		if line == "\n" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue // the Go runtime's standard families
		}
		if !strings.HasPrefix(name, "expressgateway_") {
			t.Errorf("series without the prefix: %s", strings.TrimSpace(line))
		}
	}
	if fams["expressgateway_http_request_duration_seconds"] != "histogram" ||
		!strings.Contains(body, `expressgateway_http_request_duration_seconds_bucket{listener="web",route="default",backend="`) ||
		!strings.Contains(body, `le="0.0001"}`) || !strings.Contains(body, `le="60"}`) {
		t.Error("request durations are not le histograms with 100 µs … 60 s buckets")
	}
	for _, want := range []string{
		`expressgateway_build_info{version="`,
		`expressgateway_config_last_reload_successful 1`,
		`expressgateway_config_last_reload_success_timestamp_seconds `,
		`expressgateway_tls_cert_not_after_seconds{listener="secure"} `,
		`expressgateway_tls_cert_not_after_seconds{listener="h3"} `,
		`expressgateway_backend_up{pool="dead",backend="`,
		`expressgateway_backend_health_transitions_total{pool="dead",`,
		`expressgateway_pool_healthy_backends{pool="dead"} 0`,
		`expressgateway_pool_healthy_backends{pool="app"} 1`,
		`expressgateway_upstream_connections{pool="app",backend="`,
		`expressgateway_circuit_breaker_open{pool="app",backend="`,
		`expressgateway_retries_total{pool="app"} `,
		`expressgateway_retry_budget_exhausted_total{pool="app"} `,
		`expressgateway_l4_connections_total{listener="relay",backend="`,
		`expressgateway_l4_bytes_total{listener="relay",backend="`,
		`expressgateway_quic_handshakes_total{listener="h3",outcome="completed"} `,
		`expressgateway_quic_retry_sent_total{listener="h3"} `,
		`expressgateway_quic_0rtt_accepted_total{listener="h3"} `,
		`expressgateway_http_requests_total{listener="web",route="dead",`,
		`expressgateway_http_requests_total{listener="h3",route="default",`,
		`expressgateway_guard_hits_total{rule="`,
		`expressgateway_panics_total 0`,
		`expressgateway_bus_inflight_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s… in the scrape", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}

// usedMetrics returns the metric names the PromQL expressions use,
// histogram series (_bucket, _sum, _count) by their family.
func usedMetrics(exprs []string, fams map[string]string) []string {
	re := regexp.MustCompile(`\bexpressgateway_[a-zA-Z0-9_]+`)
	set := map[string]bool{}
	for _, e := range exprs {
		for _, m := range re.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(m, suf); ok && fams[base] == "histogram" {
					m = base
				}
			}
			set[m] = true
		}
	}
	var out []string
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// The shipped Grafana dashboard and Prometheus alert rules use only
// series a running gateway exports (so they cannot drift apart from the
// code), and promtool accepts the rules.
func TestDeploy_DashboardAndAlertsMatchTheExportedMetrics(t *testing.T) {
	pt := promtool(t)
	if out, err := exec.Command(pt, "check", "rules", "deploy/prometheus/alerts.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	var exprs []string
	rules, err := os.ReadFile("deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The rule file's expressions are its expr: values (single line or a
	// | block); the names are all that is read from them.
	exprs = append(exprs, string(rules))
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Query any }
		}
	}
	raw, err := os.ReadFile("deploy/grafana/expressgateway.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	fams := families(scrapeAfterMixedTraffic(t))
	used := usedMetrics(exprs, fams)
	if len(used) < 15 {
		t.Fatalf("only %d metric names found in the dashboard and rules: %v", len(used), used)
	}
	for _, m := range used {
		if fams[m] == "" {
			t.Errorf("%s is used by the dashboard or the alerts but not exported", m)
		}
	}
	// Every rule the issue names is there.
	for _, alert := range []string{"High5xxRatio", "BackendDown", "PoolAllBackendsDown", "HighP99Latency", "CertificateExpiringSoon", "ReloadFailed", "Panics"} {
		if !bytes.Contains(rules, []byte("alert: ExpressGateway"+alert+"\n")) {
			t.Errorf("no %s alert", alert)
		}
	}
}
