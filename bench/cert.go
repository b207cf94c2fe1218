package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cert key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cert key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	c := &certs{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), bundle: filepath.Join(dir, "bundle.pem")}
	for _, f := range []struct {
		path string
		data []byte
	}{{c.cert, certPEM}, {c.key, keyPEM}, {c.bundle, append(append([]byte{}, certPEM...), keyPEM...)}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	// The targets listen on 127.0.0.1: an IP ServerName verifies the IP
	// SAN and sends no SNI, so the gateway's SNI-vs-Host check (421) has
	// nothing to compare with the Host of a 127.0.0.1 URL.
	c.client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return c, nil
}
