package pipeline

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Files are a quic listener's certificate, key and retry secret.
type h3Files struct {
	cert, key, secret string
}

func newH3Files(t *testing.T) h3Files {
	t.Helper()
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "gateway")
	secret := filepath.Join(dir, "retry.secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	return h3Files{cert: cert, key: key, secret: secret}
}

// quicListener is a config snippet for a quic listener on an ephemeral
// UDP port; extra goes into [listeners.quic] first, then the rest.
func quicListener(name string, f h3Files, quicExtra, extra string) string {
	return "[[listeners]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:0\"\nprotocol = \"quic\"\n" +
		"[listeners.quic]\ncert_path = \"" + f.cert + "\"\nkey_path = \"" + f.key + "\"\nretry_secret_path = \"" + f.secret + "\"\n" +
		strings.TrimSpace(quicExtra) + "\n" + strings.TrimSpace(extra) + "\n"
}

func certPool(t *testing.T, certPath string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate")
	}
	return p
}

// h3Client returns quic-go's HTTP/3 client trusting certPath; its
// connections close with the test.
func h3Client(t *testing.T, certPath string) (*http.Client, *http3.Transport) {
	tr := &http3.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: certPool(t, certPath), ClientSessionCache: tls.NewLRUClientSessionCache(8)},
		DisableCompression: true,
		QUICConfig:         &quic.Config{MaxIdleTimeout: 30 * time.Second},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 120 * time.Second}, tr
}

// h3URL returns https://127.0.0.1:PORT for the named quic listener.
func (g *testGateway) h3URL(name string) string {
	return "https://" + g.Addr(name).String()
}

// h3Backend starts quic-go's HTTP/3 server on loopback with a fresh
// certificate and returns its address and certificate path; opts adjust
// the server before it starts.
func h3Backend(t *testing.T, h http.Handler, opts ...func(*http3.Server)) (addr, certPath string) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath := writeCert(t, dir, "backend")
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		Handler:   h,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
	}
	for _, o := range opts {
		o(srv)
	}
	done := make(chan struct{})
	go func() { srv.Serve(pc); close(done) }()
	t.Cleanup(func() {
		srv.Close()
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String(), certPath
}
