package pipeline

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkH1Proxy measures one small GET through the whole H1 pipeline
// (client and backend in-process; profile with -cpuprofile and read the
// gateway's share).
func BenchmarkH1Proxy(b *testing.B) {
	body := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}
	go srv.Serve(ln)
	defer srv.Close()
	g := startGateway(b, h1Listener("web", `
[[listeners.backends]]
address = "`+ln.Addr().String()+`"`)+"\n[observability]\naccess_log = false\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", g.Addr("web").String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		for pb.Next() {
			c.Write(req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				c.Close()
				c, _ = net.Dial("tcp", g.Addr("web").String())
				br = bufio.NewReader(c)
			}
		}
	})
}
