package pipeline

import (
	"crypto/tls"
	"fmt"

	"github.com/expressgateway/expressgateway/conf"
)

// loadTLS builds a listener's TLS config from its certificate pair. http
// listeners offer ALPN h2, then http/1.1.
func loadTLS(t *conf.ListenerTLS, rt *conf.Runtime, http bool) (*tls.Config, error) {
	// The boot's rule holds for a rotated key too.
	if err := conf.CheckPrivateFile(t.KeyPath); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(t.CertPath, t.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s / %s: %w", t.CertPath, t.KeyPath, err)
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if rt.TLS.TLS13Only {
		c.MinVersion = tls.VersionTLS13
	}
	if http {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	return c, nil
}

// ReloadCerts re-reads every TLS listener's certificate pair (SIGUSR1). A
// pair that fails to load keeps the old one; the error says which.
func (g *Gateway) ReloadCerts() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var firstErr error
	for _, l := range g.listeners {
		var tc *tls.Config
		var err error
		switch {
		case l.cfg.TLS != nil:
			tc, err = loadTLS(l.cfg.TLS, &g.cfg.Runtime, !conf.IsL4(l.cfg.Protocol))
			if err == nil && l.tickets != nil {
				// The new pair keeps the rotation's keys: sessions resume
				// across a certificate rotation.
				l.tickets.apply(tc)
			}
		case l.cfg.QUIC != nil:
			// The QUIC listener builds each handshake's config from this
			// one, so new handshakes see the new pair (the Rust ExpressGateway re-read
			// the files on every connection instead).
			tc, err = loadTLS(&conf.ListenerTLS{CertPath: l.cfg.QUIC.CertPath, KeyPath: l.cfg.QUIC.KeyPath}, &g.cfg.Runtime, false)
			if err == nil {
				tc.MinVersion, tc.NextProtos = tls.VersionTLS13, []string{"h3"}
			}
		default:
			continue
		}
		if err != nil {
			certRotateFail.Inc()
			g.log.Error().Err(err).Str("listener", l.cfg.Name).Msg("certificate rotation failed; keeping the old certificate")
			if firstErr == nil {
				firstErr = fmt.Errorf("listener %s: %w", l.cfg.Name, err)
			}
			continue
		}
		l.tlsCfg.Store(tc)
		certRotateOK.Inc()
		g.log.Info().Str("listener", l.cfg.Name).Msg("certificate rotated")
	}
	return firstErr
}
