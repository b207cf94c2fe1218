package pipeline

import (
	"testing"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

// writeCert writes a self-signed certificate for 127.0.0.1/localhost with
// the given common name to dir as cert.pem and key.pem (key mode 0600),
// replacing an earlier pair there, and returns the paths.
func writeCert(t *testing.T, dir, cn string) (certPath, keyPath string) {
	t.Helper()
	return testcert.WriteAs(t, dir, cn, "cert.pem", "key.pem")
}
