package conf

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

// TestCheckKeyMode_Modes: owner-only and owner-plus-group-read modes pass;
// any bit for other users, or group write, is refused, the error naming
// the file, its mode, the bits at fault and the chmod that fixes it.
func TestCheckKeyMode_Modes(t *testing.T) {
	const path = "tls.key"
	for _, c := range []struct {
		mode fs.FileMode
		want []string // substrings of the error; nil: the mode passes
	}{
		{0o600, nil},
		{0o400, nil},
		{0o640, nil}, // root:ssl-cert on Debian
		{0o440, nil}, // a Kubernetes Secret with an fsGroup
		{0o700, nil}, // owner execute grants nobody else anything
		{0o200, nil},
		{0o650, nil},
		{0o644, []string{"mode 0644: other users can read it;", "chmod 0640 tls.key (or 0600 if its group need not read it)"}},
		{0o444, []string{"mode 0444: other users can read it;", "chmod 0440 tls.key (or 0400 if"}},
		{0o660, []string{"mode 0660: its group can write it;", "chmod 0640 tls.key"}},
		{0o604, []string{"mode 0604: other users can read it;", "chmod 0600 tls.key"}},
		{0o602, []string{"other users can write it;", "chmod 0600 tls.key"}},
		{0o601, []string{"other users can execute it;", "chmod 0600 tls.key"}},
		{0o666, []string{"mode 0666: other users can read and write it and its group can write it;", "chmod 0640 tls.key"}},
		{0o777, []string{"other users can read, write and execute it and its group can write it;", "chmod 0750 tls.key"}},
		{0o620, []string{"its group can write it;", "chmod 0600 tls.key"}},
	} {
		err := CheckKeyMode(path, c.mode)
		if c.want == nil {
			if err != nil {
				t.Errorf("%04o refused: %v", c.mode, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%04o passed", c.mode)
			continue
		}
		if !strings.HasPrefix(err.Error(), path+" has mode ") {
			t.Errorf("%04o: the error does not start with the file: %v", c.mode, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%04o: %q is not in %q", c.mode, w, err)
			}
		}
		if c.mode&0o040 == 0 && strings.Contains(err.Error(), "(or ") {
			t.Errorf("%04o: offers a group-less alternative although the group cannot read: %v", c.mode, err)
		}
	}
	// The type bits of a Stat mode do not count.
	if err := CheckKeyMode(path, fs.ModeSymlink|0o640); err != nil {
		t.Errorf("type bits counted: %v", err)
	}
}

// TestLoad_KeyFileModes: the config check applies the rule to a real
// certificate pair: 0640 and 0440 keys load, a 0644 one is refused under
// its key with the chmod, and so is a group-writable ticket key.
func TestLoad_KeyFileModes(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site")
	tickets := filepath.Join(dir, "tickets.secret")
	testcert.WriteFile(t, tickets, []byte("0123456789abcdef0123456789abcdef"), 0o640)
	body := `
[[listeners]]
address = "127.0.0.1:8443"
protocol = "h1s"
[listeners.tls]
cert_path = "` + cert + `"
key_path = "` + key + `"
ticket_key_path = "` + tickets + `"
[[listeners.routes]]
direct_response = { status = 200 }
`
	p := write(t, "eg.toml", body, 0o600)
	for _, m := range []os.FileMode{0o600, 0o400, 0o640, 0o440} {
		if err := os.Chmod(key, m); err != nil {
			t.Fatal(err)
		}
		if _, err := load(p, func() []string { return nil }); err != nil {
			t.Errorf("key %04o: %v", m, err)
		}
	}
	os.Chmod(key, 0o644)
	os.Chmod(tickets, 0o660)
	_, err := load(p, func() []string { return nil })
	if err == nil {
		t.Fatal("a 0644 key and a 0660 ticket key loaded")
	}
	for _, want := range []string{
		"listeners[0].tls.key_path: " + key + " has mode 0644: other users can read it;",
		"chmod 0640 " + key,
		"listeners[0].tls.ticket_key_path: " + tickets + " has mode 0660: its group can write it;",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
