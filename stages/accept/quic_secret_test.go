package accept

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

func TestReadRetrySecret_CreatesOnceThenReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "retry.secret")
	a, err := ReadRetrySecret(path)
	if err != nil || len(a) != 32 {
		t.Fatalf("create: %d bytes, %v", len(a), err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("created with mode %04o, want 0600", st.Mode().Perm())
	}
	b, err := ReadRetrySecret(path)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second read differs: %v", err)
	}
}

func TestReadRetrySecret_RejectsWeakFiles(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.secret")
	os.WriteFile(open, bytes.Repeat([]byte("k"), 32), 0o644)
	if _, err := ReadRetrySecret(open); err == nil || !strings.Contains(err.Error(), "retry secret: "+open+" has mode 0644") || !strings.Contains(err.Error(), "chmod 0640") {
		t.Fatalf("a world-readable secret was accepted: %v", err)
	}
	// The key-file rule: group read passes (root:ssl-cert 0640, or a
	// Kubernetes Secret with an fsGroup), group write does not.
	shared := filepath.Join(dir, "group.secret")
	testcert.WriteFile(t, shared, bytes.Repeat([]byte("g"), 32), 0o640)
	if b, err := ReadRetrySecret(shared); err != nil || len(b) != 32 {
		t.Fatalf("a 0640 secret was refused: %v", err)
	}
	os.Chmod(shared, 0o660)
	if _, err := ReadRetrySecret(shared); err == nil || !strings.Contains(err.Error(), "its group can write it") {
		t.Fatalf("a group-writable secret was accepted: %v", err)
	}
	short := filepath.Join(dir, "short.secret")
	os.WriteFile(short, []byte("tiny"), 0o600)
	if _, err := ReadRetrySecret(short); err == nil {
		t.Fatal("a 4-byte secret was accepted")
	}
}
