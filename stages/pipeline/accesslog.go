package pipeline

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/l4"
)

// accessQueue bounds the lines waiting for the access log's writer: at
// about 300 bytes a line, a stalled disk holds at most ~1 MiB here before
// lines are dropped.
const accessQueue = 4096

var accessDropped = metrics.NewCounter(`expressgateway_access_log_dropped_total`)

// accessLog is the access log's destination: requests hand it whole lines
// without waiting (a full queue drops the line and counts it), and one
// goroutine writes them to stderr or the file, which reopen swaps (SIGHUP,
// after logrotate moved it).
type accessLog struct {
	q    chan *[]byte
	bufs sync.Pool

	// mu orders write against close; the writer never holds it, so a
	// stalled disk never blocks a request's write.
	mu     sync.RWMutex
	closed bool

	outMu  sync.Mutex // the destination below; held by a write to it
	out    io.Writer
	file   *os.File  // out when it is a file
	path   string    // the file's path; "" for stderr
	stderr io.Writer // out without a path: os.Stderr, or the test's log

	flushed chan struct{} // flush's answer
	wg      sync.WaitGroup
}

// newAccessLog opens path ("" is stderr); start runs the writer.
func newAccessLog(path string) (*accessLog, error) {
	a := &accessLog{q: make(chan *[]byte, accessQueue), stderr: os.Stderr, flushed: make(chan struct{})}
	a.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	if err := a.reopen(path); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *accessLog) start() { a.wg.Go(a.run) }

// reopen points the log at path: a file is opened anew (the logrotate
// habit: the old name was moved, the new one is created), "" is stderr.
func (a *accessLog) reopen(path string) error {
	var f *os.File
	a.outMu.Lock()
	out := a.stderr
	a.outMu.Unlock()
	if path != "" {
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		out = f
	}
	a.outMu.Lock()
	old := a.file
	a.out, a.file, a.path = out, f, path
	a.outMu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (a *accessLog) run() {
	for b := range a.q {
		if b == nil {
			a.flushed <- struct{}{}
			continue
		}
		a.outMu.Lock()
		a.out.Write(*b)
		a.outMu.Unlock()
		a.put(b)
	}
}

func (a *accessLog) get() *[]byte { b := a.bufs.Get().(*[]byte); *b = (*b)[:0]; return b }

func (a *accessLog) put(b *[]byte) {
	if cap(*b) <= 4096 {
		a.bufs.Put(b)
	}
}

// write queues a line, or drops it when the writer is behind.
func (a *accessLog) write(b *[]byte) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.put(b)
		return
	}
	select {
	case a.q <- b:
	default:
		accessDropped.Inc()
		a.put(b)
	}
}

// flush returns once every line queued before it is written (a started
// log only).
func (a *accessLog) flush() {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.closed {
		a.q <- nil
		<-a.flushed
	}
}

// setStderr replaces stderr as the destination without a path.
func (a *accessLog) setStderr(w io.Writer) {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	if a.file == nil {
		a.out = w
	}
	a.stderr = w
}

// close writes what is queued and closes the file.
func (a *accessLog) close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	close(a.q)
	a.mu.Unlock()
	a.wg.Wait()
	a.outMu.Lock()
	if a.file != nil {
		a.file.Close()
		a.file, a.out = nil, a.stderr
	}
	a.outMu.Unlock()
}

// streamLog is where and how an L4 listener logs its connections.
type streamLog struct {
	format string
	access *accessLog
}

// newStreamLog is the stream log of cfg: nil when access logs are off.
func (g *Gateway) newStreamLog(cfg *conf.Config) *streamLog {
	if cfg.Observability.AccessLog == nil || *cfg.Observability.AccessLog {
		return &streamLog{format: cfg.Observability.AccessLogFormat, access: g.access}
	}
	return nil
}

// conn writes the line of one relayed connection.
func (sl *streamLog) conn(listener, proto string, client netip.AddrPort, start time.Time, r l4.Relayed, err error) {
	if sl == nil || sl.access == nil {
		return
	}
	b := sl.access.get()
	*b = appendStreamAccess(*b, sl.format, listener, proto, client, start, r, err)
	sl.access.write(b)
}

// flow writes the line of one datagram flow a relay forgot.
func (sl *streamLog) flow(listener, proto string, e stages.FlowEnd) {
	sl.conn(listener, proto, e.Client, e.Start, l4.Relayed{Backend: e.Backend, ToBackend: e.ToBackend, ToClient: e.ToClient}, nil)
}

// appendStreamAccess appends the line of one L4 connection (an l4 or tls
// listener's relay): in json the request line's fields that apply; in
// combined and common the form of nginx's stream module
// ($remote_addr [$time_local] $protocol $status $bytes_sent
// $bytes_received $session_time "$upstream_addr"), where status is 200
// for a relayed connection and 502 when no backend took it.
func appendStreamAccess(b []byte, format, listener, proto string, client netip.AddrPort, start time.Time, r l4.Relayed, err error) []byte {
	status := 200
	if err != nil {
		status = 502
	}
	d := time.Since(start)
	proto = strings.ToUpper(proto)
	if format == "combined" || format == "common" {
		b = append(b, client.Addr().String()...)
		b = append(b, " ["...)
		b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, "] "...)
		b = append(b, proto...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.ToClient, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, r.ToBackend, 10)
		b = append(b, ' ')
		b = strconv.AppendFloat(b, d.Seconds(), 'f', 3, 64)
		b = append(b, ` "`...)
		b = appendNginx(b, orDash(r.Backend))
		return append(b, '"', '\n')
	}
	rec := record{start: start, client: client, proto: proto, status: status, in: r.ToBackend, out: r.ToClient, duration: d, backend: r.Backend, err: err}
	return appendAccess(b, "json", listener, &rec)
}

// appendAccess appends rec's line in format (json, combined or common).
func appendAccess(b []byte, format, listener string, rec *record) []byte {
	switch format {
	case "combined", "common":
		// nginx: $remote_addr - $remote_user [$time_local] "$request"
		// $status $body_bytes_sent ["$http_referer" "$http_user_agent"]
		b = append(b, rec.client.Addr().String()...)
		b = append(b, " - - ["...)
		b = rec.start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, `] "`...)
		b = appendNginx(b, rec.method)
		b = append(b, ' ')
		b = appendNginx(b, rec.path)
		b = append(b, ' ')
		b = appendNginx(b, rec.proto)
		b = append(b, `" `...)
		b = strconv.AppendInt(b, int64(rec.status), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, rec.out, 10)
		if format == "combined" {
			b = append(b, ` "`...)
			b = appendNginx(b, orDash(rec.referer))
			b = append(b, `" "`...)
			b = appendNginx(b, orDash(rec.userAgent))
			b = append(b, '"')
		}
		return append(b, '\n')
	}
	str := func(b []byte, k, v string) []byte {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return appendJSONString(b, v)
	}
	num := func(b []byte, k string, v int64) []byte {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return strconv.AppendInt(b, v, 10)
	}
	sec := func(b []byte, k string, d time.Duration) []byte {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
	}
	b = append(b, `{"time":"`...)
	b = rec.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, '"')
	b = str(b, "client", rec.client.String())
	b = str(b, "listener", listener)
	b = str(b, "protocol", rec.proto)
	if rec.tls != nil {
		b = str(b, "tls_version", tls.VersionName(rec.tls.Version))
		b = str(b, "tls_cipher", tls.CipherSuiteName(rec.tls.CipherSuite))
		b = str(b, "sni", rec.tls.ServerName)
	}
	stream := rec.method == "" // an L4 connection's line: no request fields
	if !stream {
		b = str(b, "method", rec.method)
		b = str(b, "host", rec.host)
		b = str(b, "path", rec.path)
	}
	if rec.tunnel != "" {
		b = str(b, "tunnel", rec.tunnel)
	}
	b = num(b, "status", int64(rec.status))
	if rec.wsClose != 0 {
		// How the tunnel ended: the first WebSocket Close either way, or
		// 1006 when it was cut without one.
		b = num(b, "ws_close_code", int64(rec.wsClose))
	}
	if rec.grpc != nil && rec.grpc.status != "" {
		// A gRPC call's outcome is its grpc-status, not the HTTP 200.
		b = str(b, "grpc_status", rec.grpc.status)
	}
	b = num(b, "bytes_in", rec.in)
	b = num(b, "bytes_out", rec.out)
	b = sec(b, "duration_seconds", rec.duration)
	if !stream {
		b = str(b, "route", rec.route)
	}
	if rec.pool != "" {
		b = str(b, "pool", rec.pool)
	}
	if rec.backend != "" {
		b = str(b, "upstream_addr", rec.backend)
		if rec.upstreamStatus != 0 {
			b = num(b, "upstream_status", int64(rec.upstreamStatus))
			b = sec(b, "upstream_head_seconds", rec.upstreamHead)
			if rec.upstreamConnect > 0 {
				// Only a try that had to connect made one.
				b = sec(b, "upstream_connect_seconds", rec.upstreamConnect)
			}
		}
		b = num(b, "retries", int64(rec.retries))
	}
	if !stream {
		b = str(b, "user_agent", rec.userAgent)
		b = str(b, "referer", rec.referer)
		b = str(b, "request_id", rec.requestID)
	}
	if rec.err != nil {
		b = str(b, "error", rec.err.Error())
	}
	return append(b, "}\n"...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendNginx appends s as nginx's log escaping does: ", \ and bytes
// outside printable ASCII as \xHH, so a line stays one line.
func appendNginx(b []byte, s string) []byte {
	const hexdig = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			b = append(b, '\\', 'x', hexdig[c>>4], hexdig[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced.
func appendJSONString(b []byte, s string) []byte {
	const hexdig = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexdig[c>>4], hexdig[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// requestID returns the request's id: the client's X-Request-ID when
// trusted and well-formed, else a new UUIDv7 (time-ordered, so ids sort
// by arrival in logs).
func requestID(client string, trust bool) string {
	if trust && wellFormedID(client) {
		return client
	}
	var u [16]byte
	rand.Read(u[:])
	binary.BigEndian.PutUint64(u[:8], uint64(time.Now().UnixMilli())<<16|uint64(binary.BigEndian.Uint16(u[6:8])))
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// wellFormedID reports whether a client's X-Request-ID may be kept: 1 to
// 128 characters a log line and a header carry as they are.
func wellFormedID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '@' || c == '+':
		default:
			return false
		}
	}
	return true
}
