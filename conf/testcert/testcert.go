// Package testcert makes self-signed certificates for tests and the bench:
// a real pair, a key of another pair, and the broken files a user can point
// a config at.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Generate returns a fresh self-signed certificate for localhost and
// 127.0.0.1 with the common name name, and its key, both PEM.
func Generate(name string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// Write writes name.crt (a self-signed certificate for localhost and
// 127.0.0.1) and name.key (its key, mode 0600) to dir and returns the paths.
func Write(t testing.TB, dir, name string) (certPath, keyPath string) {
	t.Helper()
	return WriteAs(t, dir, name, name+".crt", name+".key")
}

// WriteAs is Write with the file names given (a second call with the same
// names replaces the pair, as a certificate rotation does).
func WriteAs(t testing.TB, dir, name, certFile, keyFile string) (certPath, keyPath string) {
	t.Helper()
	certPEM, keyPEM, err := Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	WriteFile(t, certPath, certPEM, 0o644)
	WriteFile(t, keyPath, keyPEM, 0o600)
	return certPath, keyPath
}

// WriteFile writes b to path with exactly mode (whatever the umask).
func WriteFile(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
