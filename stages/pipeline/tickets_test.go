package pipeline

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/conf"
)

// frozenCache is a client session cache that keeps the first ticket it
// is given, so a test can offer the same ticket again and again.
type frozenCache struct {
	mu sync.Mutex
	s  *tls.ClientSessionState
}

func (c *frozenCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s, c.s != nil
}

func (c *frozenCache) Put(_ string, s *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s == nil && s != nil {
		c.s = s
	}
}

// tlsGet does one HTTP/1.1 request over TLS (so the client reads the
// server's session ticket) and reports whether the handshake resumed.
func tlsGet(t *testing.T, addr, certPath string, cache tls.ClientSessionCache) bool {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: certPool(t, certPath), ServerName: "localhost", NextProtos: []string{"http/1.1"}, ClientSessionCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c.ConnectionState().DidResume
}

// ticketGateway starts an h1s listener with the given [listeners.tls] extra
// keys and returns its address.
func ticketGateway(t *testing.T, cert, key, be, extra string) string {
	g := startGateway(t, `
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
`+extra+`
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"
`)
	return g.Addr("tls").String()
}

func okBackend(t *testing.T) string {
	return backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
}

func TestTLS_TicketKeyPath_InstancesResumeEachOthersSessions(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "localhost")
	be := okBackend(t)
	shared := "ticket_key_path = \"" + filepath.Join(dir, "tickets.secret") + "\""
	a := ticketGateway(t, cert, key, be, shared)
	b := ticketGateway(t, cert, key, be, shared)
	other := ticketGateway(t, cert, key, be, "ticket_key_path = \""+filepath.Join(dir, "other.secret")+"\"")
	solo := ticketGateway(t, cert, key, be, "")

	st, err := os.Stat(filepath.Join(dir, "tickets.secret"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("ticket key file: %v %v", st, err)
	}
	cache := &frozenCache{}
	if tlsGet(t, a, cert, cache) {
		t.Fatal("the first handshake resumed")
	}
	if !tlsGet(t, b, cert, cache) {
		t.Fatal("a ticket from one instance did not resume on another sharing ticket_key_path")
	}
	if tlsGet(t, other, cert, cache) || tlsGet(t, solo, cert, cache) {
		t.Fatal("a ticket resumed on an instance with a different ticket key")
	}
}

// TestTLS_TicketKeyPath_KeyFileRule: a ticket key follows the TLS key's
// rule: readable by its group passes, by other users or writable by its
// group does not.
func TestTLS_TicketKeyPath_KeyFileRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tickets.secret")
	os.WriteFile(path, make([]byte, 32), 0o600)
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o640, true}, {0o440, true}, {0o644, false}, {0o660, false}} {
		os.Chmod(path, c.mode)
		k, err := newTicketKeys(&conf.ListenerTLS{TicketKeyPath: path, TicketRotationIntervalSeconds: 60, TicketRotationOverlapSeconds: 60})
		if c.ok && (err != nil || k == nil) {
			t.Errorf("a %04o ticket key was refused: %v", c.mode, err)
		}
		if !c.ok && (err == nil || k != nil) {
			t.Errorf("a %04o ticket key was accepted", c.mode)
		}
	}
}

func TestTLS_TicketRotation_OldKeyStopsResumingAfterTheOverlap(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "localhost")
	addr := ticketGateway(t, cert, key, okBackend(t), "ticket_rotation_interval_seconds = 2\nticket_rotation_overlap_seconds = 2")
	cache := &frozenCache{}
	tlsGet(t, addr, cert, cache)
	// The ticket's key lives through the rest of its interval and 2 s of
	// overlap: at least 2 s, at most 4 s. It must stop resuming; without
	// rotation it would resume for as long as the process runs.
	if !tlsGet(t, addr, cert, cache) {
		t.Fatal("a ticket did not resume at once")
	}
	deadline := time.Now().Add(15 * time.Second)
	for tlsGet(t, addr, cert, cache) {
		if time.Now().After(deadline) {
			t.Fatal("a ticket still resumes long after its key's interval and overlap")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A fresh ticket resumes: rotation issues new keys, it does not stop
	// resumption.
	fresh := &frozenCache{}
	tlsGet(t, addr, cert, fresh)
	if !tlsGet(t, addr, cert, fresh) {
		t.Fatal("a fresh ticket did not resume")
	}
}

// TestTicketKeys_EpochsAndOverlap drives the key schedule with a chosen
// clock through real handshakes.
func TestTicketKeys_EpochsAndOverlap(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := writeCert(t, dir, "localhost")
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	k := &ticketKeys{secret: secret, interval: time.Hour, overlap: 30 * time.Minute}
	t0 := time.Unix(1_800_000_000/3600*3600, 0).Add(10 * time.Minute)
	server := func(k *ticketKeys, now time.Time) *tls.Config {
		c := &tls.Config{Certificates: []tls.Certificate{cert}}
		keys, _ := k.at(now)
		c.SetSessionTicketKeys(keys)
		return c
	}
	cache := &frozenCache{}
	pool := certPool(t, certPath)
	if pipeHandshake(t, server(k, t0), pool, cache) {
		t.Fatal("the first handshake resumed")
	}
	for _, tc := range []struct {
		name   string
		k      *ticketKeys
		now    time.Time
		resume bool
	}{
		{"same interval", k, t0.Add(40 * time.Minute), true},
		{"next interval, within the overlap", k, t0.Add(70 * time.Minute), true},
		{"next interval, past the overlap", k, t0.Add(81 * time.Minute), false},
		{"another instance, same secret", &ticketKeys{secret: secret, interval: time.Hour, overlap: 30 * time.Minute}, t0, true},
		{"another secret", &ticketKeys{secret: []byte("fedcba9876543210fedcba9876543210"), interval: time.Hour, overlap: 30 * time.Minute}, t0, false},
	} {
		if got := pipeHandshake(t, server(tc.k, tc.now), pool, cache); got != tc.resume {
			t.Errorf("%s: resumed %v, want %v", tc.name, got, tc.resume)
		}
	}
	keys, next := k.at(t0.Add(70 * time.Minute))
	if len(keys) != 2 || !next.Equal(t0.Add(80*time.Minute)) {
		t.Errorf("within the overlap: %d keys, next change %v (want 2, %v)", len(keys), next, t0.Add(80*time.Minute))
	}
}

// pipeHandshake runs a TLS handshake over an in-memory pipe, lets the
// client read the session ticket, and reports whether it resumed.
func pipeHandshake(t *testing.T, srv *tls.Config, roots *x509.CertPool, cache tls.ClientSessionCache) bool {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	errc := make(chan error, 1)
	go func() {
		s := tls.Server(a, srv)
		if err := s.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err := s.Write([]byte("x"))
		errc <- err
	}()
	cc := &tls.Config{ServerName: "localhost", RootCAs: roots, ClientSessionCache: cache}
	c := tls.Client(b, cc)
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().DidResume
}

// A quic listener's ticket keys come from its Retry secret: the same on
// every instance sharing it (and across a restart), others' for another
// secret, rotating daily with yesterday's key still opening tickets.
func TestQUICTicketKeys_FromTheRetrySecretAndRotating(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, _ := newQUICTicketKeys(secret)
	b, _ := newQUICTicketKeys(secret)
	other, _ := newQUICTicketKeys([]byte("another secret, another key...."))
	now := time.Unix(1_800_000_000, 0)
	ka, kb, ko := a.keysAt(now), b.keysAt(now), other.keysAt(now)
	if len(ka) != 2 || ka[0] != kb[0] || ka[1] != kb[1] {
		t.Fatalf("instances sharing the secret disagree: %d keys", len(ka))
	}
	if ka[0] == ko[0] {
		t.Fatal("another secret gives the same key")
	}
	if ka[0] == [32]byte(secret) {
		t.Fatal("the ticket key is the Retry secret itself")
	}
	day := time.Duration(24) * time.Hour
	next := a.keysAt(now.Add(day))
	if next[0] == ka[0] || next[1] != ka[0] {
		t.Fatal("a day later the key did not rotate with the old one kept for the overlap")
	}
}
