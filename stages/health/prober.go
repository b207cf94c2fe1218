package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/quic-go/quic-go/http3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/route"
)

// Prober runs one active check against one backend; nil means it passed.
// The checker bounds ctx by timeout_ms and never runs two probes of one
// backend at once.
type Prober interface {
	Probe(ctx context.Context, b *route.Backend) error
	// Close releases what the prober keeps (connections).
	Close()
}

// maxBodyMatch bounds how much of a response body_contains searches.
const maxBodyMatch = 64 << 10

// newProber builds the prober of a health_check section for the pool's
// backends (bs is the pool's config, in the same order as its backends).
func newProber(hc *conf.HealthCheck, bs []conf.Backend) (Prober, error) {
	switch hc.Type {
	case "tcp":
		return tcpProber{}, nil
	case "http":
		return newHTTPProber(hc, bs)
	case "grpc":
		return newGRPCProber(hc, bs)
	}
	return nil, fmt.Errorf("health: unknown check type %q", hc.Type)
}

// tcpProber passes when a TCP connection opens.
type tcpProber struct{}

func (tcpProber) Probe(ctx context.Context, b *route.Backend) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", b.Address)
	if err != nil {
		return err
	}
	return c.Close()
}

func (tcpProber) Close() {}

// httpProber sends method path over the backend's own protocol (HTTP/1.1
// for h1 and tcp backends, HTTP/2 for h2, prior knowledge when cleartext,
// HTTP/3 for h3 and quic), with TLS when the backend has it, on a fresh connection
// each time (so a probe proves the backend still accepts), and passes on
// the expected status and body.
type httpProber struct {
	hc      *conf.HealthCheck
	clients []*http.Client // per backend: protocol and TLS settings differ
	schemes []string
	closers []func() // per backend: drop the probe's connection
}

func newHTTPProber(hc *conf.HealthCheck, bs []conf.Backend) (*httpProber, error) {
	p := &httpProber{hc: hc}
	for _, bc := range bs {
		rt, scheme, closeIdle, err := probeTransport(bc)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.clients = append(p.clients, &http.Client{
			Transport:     rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
		p.schemes = append(p.schemes, scheme)
		p.closers = append(p.closers, closeIdle)
	}
	return p, nil
}

// probeTransport builds the round tripper that speaks bc's protocol, its
// URL scheme, and a function that closes its idle connections.
func probeTransport(bc conf.Backend) (http.RoundTripper, string, func(), error) {
	var tc *tls.Config
	if bc.TLS || bc.Protocol == "h3" || bc.Protocol == "quic" { // QUIC is always TLS
		var err error
		if tc, err = tlsConfig(bc); err != nil {
			return nil, "", nil, err
		}
	}
	switch bc.Protocol {
	case "h2":
		// HTTP/2 only: h2c with prior knowledge (RFC 9113 §3.3) when
		// cleartext, as the upstream does, ALPN h2 over TLS.
		ps := new(http.Protocols)
		scheme := "https"
		if tc == nil {
			ps.SetUnencryptedHTTP2(true)
			scheme = "http"
		} else {
			ps.SetHTTP2(true)
		}
		tr := &http.Transport{Proxy: nil, TLSClientConfig: tc, DisableCompression: true, Protocols: ps}
		return tr, scheme, tr.CloseIdleConnections, nil
	case "h3", "quic": // a Mode B backend is checked over HTTP/3
		tc.MinVersion = tls.VersionTLS13
		tr := &http3.Transport{TLSClientConfig: tc, DisableCompression: true}
		return tr, "https", tr.CloseIdleConnections, nil
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: tc}
	if tc != nil {
		return tr, "https", tr.CloseIdleConnections, nil
	}
	return tr, "http", tr.CloseIdleConnections, nil
}

func (p *httpProber) Probe(ctx context.Context, b *route.Backend) error {
	i := b.Index()
	req, err := http.NewRequestWithContext(ctx, p.hc.Method, p.schemes[i]+"://"+b.Address+p.hc.Path, nil)
	if err != nil {
		return err
	}
	if p.hc.Host != "" {
		req.Host = p.hc.Host
	}
	req.Header.Set("User-Agent", "expressgateway-health")
	res, err := p.clients[i].Do(req)
	if err != nil {
		p.closers[i]()
		return err
	}
	defer p.closers[i]() // a fresh connection for the next probe
	defer res.Body.Close()
	if want := p.hc.ExpectStatus; want != 0 && res.StatusCode != want || want == 0 && (res.StatusCode < 200 || res.StatusCode > 399) {
		return fmt.Errorf("health: status %d", res.StatusCode)
	}
	if p.hc.BodyContains != "" {
		body, err := io.ReadAll(io.LimitReader(res.Body, maxBodyMatch))
		if err != nil {
			return err
		}
		if !bytes.Contains(body, []byte(p.hc.BodyContains)) {
			return fmt.Errorf("health: body lacks %q", p.hc.BodyContains)
		}
	}
	return nil
}

func (p *httpProber) Close() {
	for _, c := range p.closers {
		c()
	}
	for _, c := range p.clients {
		if t, ok := c.Transport.(*http3.Transport); ok {
			t.Close() // also closes its UDP socket
		}
	}
}

// grpcProber asks grpc.health.v1.Health/Check over one client connection
// per backend and passes on SERVING.
type grpcProber struct {
	service string
	conns   []*grpc.ClientConn
}

func newGRPCProber(hc *conf.HealthCheck, bs []conf.Backend) (*grpcProber, error) {
	p := &grpcProber{service: hc.Service}
	for _, bc := range bs {
		creds := insecure.NewCredentials()
		if bc.TLS {
			tc, err := tlsConfig(bc)
			if err != nil {
				p.Close()
				return nil, err
			}
			creds = credentials.NewTLS(tc)
		}
		cc, err := grpc.NewClient("passthrough:///"+bc.Address, grpc.WithTransportCredentials(creds))
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("health: grpc client for %s: %w", bc.Address, err)
		}
		p.conns = append(p.conns, cc)
	}
	return p, nil
}

func (p *grpcProber) Probe(ctx context.Context, b *route.Backend) error {
	res, err := healthpb.NewHealthClient(p.conns[b.Index()]).Check(ctx, &healthpb.HealthCheckRequest{Service: p.service})
	if err != nil {
		return err
	}
	if s := res.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health: grpc status %s", s)
	}
	return nil
}

func (p *grpcProber) Close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// tlsConfig builds a probe's TLS settings from the backend's config.
func tlsConfig(bc conf.Backend) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	host, _, err := net.SplitHostPort(bc.Address)
	if err != nil {
		return nil, err
	}
	tc.ServerName = host
	if bc.TLSVerifyHostname != "" {
		tc.ServerName = bc.TLSVerifyHostname
	}
	if bc.TLSCAPath != "" {
		pem, err := os.ReadFile(bc.TLSCAPath)
		if err != nil {
			return nil, fmt.Errorf("health: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("health: no certificate in " + bc.TLSCAPath)
		}
	}
	if bc.TLSVerifyPeer != nil && !*bc.TLSVerifyPeer {
		tc.InsecureSkipVerify = true // the operator said so: tls_verify_peer = false
	}
	if strings.Contains(tc.ServerName, ":") { // a bare IPv6 literal is no SNI name
		tc.ServerName = ""
	}
	return tc, nil
}
