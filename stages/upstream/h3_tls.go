package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/expressgateway/expressgateway/conf"
)

// H3TLS builds the TLS client config of an h3 backend. QUIC always runs
// TLS 1.3, so it is built whether or not the backend sets tls = true: the
// server certificate is verified by default, against tls_ca_path when set
// (else the system roots), for tls_verify_hostname when set (else the
// address's host); tls_verify_peer = false turns verification off.
func H3TLS(b conf.Backend) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(b.Address)
	if err != nil {
		host = b.Address
	}
	c := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: host, NextProtos: []string{"h3"}}
	if b.TLSVerifyHostname != "" {
		c.ServerName = b.TLSVerifyHostname
	}
	if b.TLSCAPath != "" {
		pem, err := os.ReadFile(b.TLSCAPath)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_path: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls_ca_path: no PEM certificate in " + b.TLSCAPath)
		}
		c.RootCAs = pool
	}
	if b.TLSVerifyPeer != nil && !*b.TLSVerifyPeer {
		c.InsecureSkipVerify = true
	}
	return c, nil
}
