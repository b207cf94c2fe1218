package pipeline

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestH3_FrontProxiesGetAndPostToH1Backend(t *testing.T) {
	be := backend(t, echoHandler())
	f := newH3Files(t)
	g := startGateway(t, quicListener("h3", f, "", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`))
	c, _ := h3Client(t, f.cert)
	for i := range 3 {
		resp, err := c.Get(g.h3URL("h3") + fmt.Sprintf("/p%d", i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != fmt.Sprintf("hello /p%d", i) || resp.Proto != "HTTP/3.0" {
			t.Fatalf("GET %d: %d %q %s", i, resp.StatusCode, body, resp.Proto)
		}
		if !strings.Contains(resp.Header.Get("x-seen-via"), "3 expressgateway") || resp.Header.Get("x-seen-xff") != "127.0.0.1" {
			t.Fatalf("forwarding fields: %v", resp.Header)
		}
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	resp, err := c.Post(g.h3URL("h3")+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d bytes, want %d", len(got), len(payload))
	}
}

func TestH3_BackendIsReachedFromH1Front(t *testing.T) {
	addr, cert := h3Backend(t, echoHandler())
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+addr+`"
protocol = "h3"
tls_ca_path = "`+cert+`"
tls_verify_hostname = "localhost"`))
	c := client(t)
	resp, err := c.Get(g.url("web") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello /x" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	payload := bytes.Repeat([]byte("z"), 3<<20)
	resp, err = c.Post(g.url("web")+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d bytes", len(got))
	}
}

func TestH3_BackendCertificateIsVerifiedByDefault(t *testing.T) {
	addr, _ := h3Backend(t, echoHandler())
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+addr+`"
protocol = "h3"`))
	resp, err := client(t).Get(g.url("web") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("untrusted backend certificate: got %d, want 502", resp.StatusCode)
	}
}
