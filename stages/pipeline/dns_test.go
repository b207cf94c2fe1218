package pipeline

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
)

func TestDNSClampTTL(t *testing.T) {
	r := &dnsResolver{min: time.Second, max: 300 * time.Second}
	for _, c := range []struct {
		ttl  uint32
		want time.Duration
	}{
		{0, time.Second},
		{1, time.Second},
		{30, 30 * time.Second},
		{300, 300 * time.Second},
		{86400, 300 * time.Second},
		{1<<32 - 1, 300 * time.Second},
	} {
		if got := r.clamp(c.ttl); got != c.want {
			t.Errorf("clamp(%d) = %v, want %v", c.ttl, got, c.want)
		}
	}
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestDNSDiffAddrs(t *testing.T) {
	for _, c := range []struct {
		prev, next, added, removed []netip.Addr
	}{
		{addrs("127.0.0.2"), addrs("127.0.0.2"), nil, nil},
		{addrs("127.0.0.2"), addrs("127.0.0.2", "127.0.0.3"), addrs("127.0.0.3"), nil},
		{addrs("127.0.0.2", "127.0.0.3"), addrs("127.0.0.3"), nil, addrs("127.0.0.2")},
		{addrs("127.0.0.2"), addrs("::1"), addrs("::1"), addrs("127.0.0.2")},
		{nil, addrs("127.0.0.2"), addrs("127.0.0.2"), nil},
	} {
		a, r := diffAddrs(c.prev, c.next)
		if !slices.Equal(a, c.added) || !slices.Equal(r, c.removed) {
			t.Errorf("diffAddrs(%v, %v) = %v, %v; want %v, %v", c.prev, c.next, a, r, c.added, c.removed)
		}
	}
}

// TestDNSExpand checks that a DNS-named backend becomes one backend per
// address of its watch's set, that IP backends stay, that an address both
// named and listed is one backend, and that TLS verifies the name.
func TestDNSExpand(t *testing.T) {
	s := newDNSSet(conf.DNS{}, zerolog.Nop())
	s.watches["p\x00svc.test:8080"] = &dnsWatch{pool: "p", host: "svc.test", addrs: members(addrs("127.0.0.2", "127.0.0.3"))}
	s.begin()
	pc := conf.Pool{Name: "p", Backends: []conf.Backend{
		{Address: "127.0.0.3:8080", Protocol: "h1"},
		{Address: "svc.test:8080", Protocol: "h1", TLS: true},
	}}
	out, err := s.expand(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range out.Backends {
		got = append(got, b.Address+" "+b.TLSVerifyHostname)
	}
	want := []string{"127.0.0.3:8080 ", "127.0.0.2:8080 svc.test"}
	if !slices.Equal(got, want) {
		t.Fatalf("expanded to %q, want %q", got, want)
	}
	if !s.used["p\x00svc.test:8080"] {
		t.Fatal("the watch is not marked used by the build")
	}
	// A build that does not use a watch stops it.
	s.begin()
	s.commit()
	if len(s.watches) != 0 {
		t.Fatalf("unused watch kept: %v", s.watches)
	}
}

func TestDNSNameParse(t *testing.T) {
	for _, c := range []struct {
		addr string
		host string
		ok   bool
	}{
		{"127.0.0.1:80", "", false},
		{"[::1]:80", "", false},
		{"svc.test:80", "svc.test", true},
		{"svc.test.:80", "svc.test", true},
		{"localhost:80", "", false},
		{"nonsense", "", false},
	} {
		h, _, ok := conf.DNSName(c.addr)
		if h != c.host || ok != c.ok {
			t.Errorf("DNSName(%q) = %q, %v; want %q, %v", c.addr, h, ok, c.host, c.ok)
		}
	}
}

// TestDNSSystemResolver reads the servers from the resolver configuration
// when [runtime.dns] names none, and takes the bounds from the config.
func TestDNSSystemResolver(t *testing.T) {
	f := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(f, []byte("search example\nnameserver 127.0.0.53\nnameserver ::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := resolvConf
	resolvConf = f
	t.Cleanup(func() { resolvConf = old })
	r, err := newDNSResolver(conf.DNS{TimeoutMs: 500, MinTTLMs: 2000, MaxTTLMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.53:53", "[::1]:53"}; !slices.Equal(r.servers, want) {
		t.Fatalf("servers %v, want %v", r.servers, want)
	}
	// The search list applies to a short name (ndots 1 by default), not
	// to a fully qualified one.
	if got, want := r.sys.NameList("svc"), []string{"svc.example.", "svc."}; !slices.Equal(got, want) {
		t.Fatalf("candidates of svc: %v, want %v", got, want)
	}
	if r.timeout != 500*time.Millisecond || r.clamp(1) != 2*time.Second || r.clamp(60) != 5*time.Second {
		t.Fatalf("timeout %v, clamp(1) %v, clamp(60) %v", r.timeout, r.clamp(1), r.clamp(60))
	}
	r, err = newDNSResolver(conf.DNS{Servers: []string{"127.0.0.1:5353"}})
	if err != nil || !slices.Equal(r.servers, []string{"127.0.0.1:5353"}) {
		t.Fatalf("configured servers: %v, %v", r, err)
	}
	resolvConf = filepath.Join(t.TempDir(), "missing")
	if _, err := newDNSResolver(conf.DNS{}); err == nil {
		t.Fatal("no servers and no resolver configuration: no error")
	}
}
