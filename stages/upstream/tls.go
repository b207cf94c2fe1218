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

// BackendTLS builds the TLS client config of a backend from its keys (tls,
// tls_ca_path, tls_verify_hostname, tls_verify_peer); nil for a cleartext
// backend. An h2 backend offers ALPN "h2" only, an h1 backend "http/1.1":
// each transport must get the protocol it speaks.
func BackendTLS(b conf.Backend) (*tls.Config, error) {
	if !b.TLS {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(b.Address)
	if err != nil {
		host = b.Address
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
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
	switch b.Protocol {
	case "h2":
		c.NextProtos = []string{"h2"}
	case "h1":
		c.NextProtos = []string{"http/1.1"}
	}
	return c, nil
}
