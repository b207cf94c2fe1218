package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

// certs is a throwaway self-signed certificate for localhost and
// 127.0.0.1, as the files each proxy wants, and a client config that
// trusts it.
type certs struct {
	cert, key string // PEM files (the key 0600, as the gateway requires)
	bundle    string // certificate and key in one file, as HAProxy wants
	client    *tls.Config
}

func writeCerts(dir string) (*certs, error) {
	certPEM, keyPEM, err := testcert.Generate("localhost")
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	c := &certs{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), bundle: filepath.Join(dir, "bundle.pem")}
	for _, f := range []struct {
		path string
		data []byte
	}{{c.cert, certPEM}, {c.key, keyPEM}, {c.bundle, append(append([]byte{}, certPEM...), keyPEM...)}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	// The targets listen on 127.0.0.1: an IP ServerName verifies the IP
	// SAN and sends no SNI, so the gateway's SNI-vs-Host check (421) has
	// nothing to compare with the Host of a 127.0.0.1 URL.
	c.client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return c, nil
}
