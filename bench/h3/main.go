// Command h3 benchmarks the HTTP/3 front side by side with the H1 and H2
// fronts in one run: H3→H1, H3→H2, H3→H3 through a quic listener, and
// H1→H1, H2→H1 (h2c) through an h1 listener, all on loopback against
// in-process backends (net/http, x/net/http2 h2c, quic-go http3). It prints
// requests/s, p50/p99 latency and the gateway's CPU-seconds per 1000
// requests for each scenario.
//
//	go run ./bench/h3 -d 10s -c 32
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"
)

func main() {
	dur := flag.Duration("d", 10*time.Second, "duration of each scenario")
	conc := flag.Int("c", 32, "concurrent requests in flight")
	size := flag.Int("size", 64, "response body bytes")
	gwBin := flag.String("gateway", "", "gateway binary (default: build it)")
	flag.Parse()
	if err := run(*dur, *conc, *size, *gwBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/h3:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	n, errs  int64
	elapsed  time.Duration
	p50, p99 time.Duration
	cpu      time.Duration
}

func run(dur time.Duration, conc, size int, gwBin string) error {
	dir, err := os.MkdirTemp("", "egbench-h3")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	certPath, keyPath, err := writeCert(dir)
	if err != nil {
		return err
	}
	body := make([]byte, size)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	h1Addr, stop1, err := serveTCP(h)
	if err != nil {
		return err
	}
	defer stop1()
	h2Addr, stop2, err := serveTCP(h) // h1 and h2c (prior knowledge)
	if err != nil {
		return err
	}
	defer stop2()
	h3Addr, stop3, err := serveH3(h, certPath, keyPath)
	if err != nil {
		return err
	}
	defer stop3()

	if gwBin == "" {
		gwBin = filepath.Join(dir, "expressgateway")
		if out, err := exec.Command("go", "build", "-o", gwBin, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("build gateway: %v\n%s", err, out)
		}
	}
	tcpAddr, err := freeTCP()
	if err != nil {
		return err
	}
	udpAddr, err := freeUDP()
	if err != nil {
		return err
	}
	secret := filepath.Join(dir, "retry.secret")
	os.WriteFile(secret, []byte("bench-retry-secret-0123456789abcdef"), 0o600)
	routes := fmt.Sprintf(`
[[listeners.routes]]
path_prefix = "/h2"
[[listeners.routes.backends]]
address = %q
protocol = "h2"
[[listeners.routes]]
path_prefix = "/h3"
[[listeners.routes.backends]]
address = %q
protocol = "h3"
tls_ca_path = %q
tls_verify_hostname = "localhost"
[[listeners.backends]]
address = %q
protocol = "h1"
`, h2Addr, h3Addr, certPath, h1Addr)
	cfg := fmt.Sprintf(`
[observability]
access_log = false
[[listeners]]
name = "tcp"
address = %q
protocol = "h1"
%s
[[listeners]]
name = "quic"
address = %q
protocol = "quic"
[listeners.quic]
cert_path = %q
key_path = %q
retry_secret_path = %q
retry_above_new_conns_per_sec = 1000
%s`, tcpAddr, routes, udpAddr, certPath, keyPath, secret, routes)
	cfgPath := filepath.Join(dir, "eg.toml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	cmd := exec.Command(gwBin, cfgPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		// SIGTERM drains (and flushes EG_CPUPROFILE); kill if it hangs.
		cmd.Process.Signal(syscall.SIGTERM)
		t := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
		cmd.Wait()
		t.Stop()
	}()
	if err := waitTCP(tcpAddr); err != nil {
		return err
	}
	pid := cmd.Process.Pid

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(certPath)
	pool.AppendCertsFromPEM(pem)
	h1c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, DisableCompression: true}}
	var h2p http.Protocols
	h2p.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &h2p, DisableCompression: true}}
	h3tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, DisableCompression: true}
	defer h3tr.Close()
	h3c := &http.Client{Transport: h3tr}

	scenarios := []struct {
		name string
		c    *http.Client
		url  string
	}{
		{"H1→H1", h1c, "http://" + tcpAddr + "/"},
		{"H2→H1", h2c, "http://" + tcpAddr + "/"},
		{"H3→H1", h3c, "https://" + udpAddr + "/"},
		{"H3→H2", h3c, "https://" + udpAddr + "/h2"},
		{"H3→H3", h3c, "https://" + udpAddr + "/h3"},
	}
	var results []result
	for _, s := range scenarios {
		r := load(s.name, s.c, s.url, dur, conc, pid)
		results = append(results, r)
	}
	fmt.Printf("%-8s %10s %8s %10s %10s %14s\n", "scenario", "req/s", "errors", "p50", "p99", "gw CPU-s/1k")
	for _, r := range results {
		rps := float64(r.n) / r.elapsed.Seconds()
		per := 0.0
		if r.n > 0 {
			per = r.cpu.Seconds() / float64(r.n) * 1000
		}
		fmt.Printf("%-8s %10.0f %8d %10v %10v %14.4f\n", r.name, rps, r.errs, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), per)
	}
	return nil
}

func load(name string, c *http.Client, url string, dur time.Duration, conc, pid int) result {
	get := func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	for range conc { // warm every pool on both sides
		get()
	}
	cpu0 := cpuTime(pid)
	var (
		n, errs atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		wg      sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(dur)
	for range conc {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := get(); err != nil {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := result{name: name, n: n.Load(), errs: errs.Load(), elapsed: time.Since(start), cpu: cpuTime(pid) - cpu0}
	slices.Sort(lats)
	if len(lats) > 0 {
		r.p50 = lats[len(lats)/2]
		r.p99 = lats[len(lats)*99/100]
	}
	return r
}

// cpuTime is the user+system CPU of pid from /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100
}

func serveTCP(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

func serveH3(h http.Handler, certPath, keyPath string) (string, func(), error) {
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return "", nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}})}
	go srv.Serve(pc)
	return pc.LocalAddr().String(), func() { srv.Close(); pc.Close() }, nil
}

func freeTCP() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func freeUDP() (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer pc.Close()
	return pc.LocalAddr().String(), nil
}

func waitTCP(addr string) error {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("gateway did not listen on %s", addr)
}

func writeCert(dir string) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	c, k := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return c, k, nil
}
