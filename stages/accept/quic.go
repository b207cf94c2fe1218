package accept

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
)

// QUICConfig is what a QUIC listener needs: its socket, certificate, the
// address-validation secret, and the QUIC-level caps.
type QUICConfig struct {
	Address string
	// TLS is the server config; ALPN h3 is set by ListenQUIC unless ALPN
	// is set.
	TLS func() *tls.Config
	// ALPN, when set, chooses the protocols the server accepts from those
	// a client offers (a relay accepts any, in the client's order); empty
	// refuses the handshake. Nil: h3 only.
	ALPN func(offered []string) []string
	// MaxUniStreams caps concurrent unidirectional streams per connection;
	// 0 is HTTP/3's need (control, QPACK and greased streams).
	MaxUniStreams int64
	// RetrySecret keys the address-validation tokens (Retry and NEW_TOKEN).
	// Tokens are bound to the client address and age-limited by quic-go;
	// the same secret after a restart keeps outstanding tokens valid.
	RetrySecret []byte
	// TicketKeys returns the session-ticket keys valid at now, newest
	// first (new tickets are sealed with the first): resumption, and so
	// 0-RTT, works on every instance whose keys agree and across a
	// restart. Nil: crypto/tls's own random keys, this endpoint only.
	TicketKeys func(now time.Time) [][32]byte
	// RetryAbovePerSec sends a Retry to every Initial without a valid token
	// once more than this many new connections arrive in a second; 0 means
	// always.
	RetryAbovePerSec int
	MaxIdleTimeout   time.Duration
	HandshakeTimeout time.Duration
	// MaxUDPPayload is the largest UDP payload we accept: bigger datagrams
	// are dropped by a socket filter. quic-go itself reads (and advertises)
	// at most MaxQUICPacket, so a cap at or above it needs no filter.
	MaxUDPPayload int
	Allow0RTT     bool
	// MaxStreams caps concurrent request streams per connection (QUIC
	// MAX_STREAMS): a stream's credit returns only once its handler is done.
	MaxStreams int64
	// Datagrams offers QUIC datagrams (RFC 9221), for HTTP Datagrams.
	Datagrams bool
	// StreamWindow and ConnWindow are the QUIC receive windows; they equal
	// the bus budgets so that QUIC flow control follows the bus.
	StreamWindow, ConnWindow uint64
	// Gate holds the per-IP and global QUIC connection caps.
	Gate     *Gate
	OnReject func(Reject)
	// OnRetry is called for each Retry sent (a counter).
	OnRetry func()
	Log     zerolog.Logger
}

// MaxQUICPacket is quic-go's packet buffer: the largest datagram it reads.
const MaxQUICPacket = 1452

// QUICListener is a listening QUIC endpoint: one UDP socket, one quic-go
// Transport, early connections (0-RTT when allowed).
type QUICListener struct {
	cfg  *QUICConfig
	live atomic.Pointer[QUICLive]
	udp  *net.UDPConn
	tr   *quic.Transport
	ln   *quic.EarlyListener

	// second-granular new-connection counter for RetryAbovePerSec.
	rateSec atomic.Int64
	rateN   atomic.Int64

	wg sync.WaitGroup
}

// QUICLive are the settings a running endpoint applies to each new
// connection (a reload changes them; connections already up keep theirs).
type QUICLive struct {
	MaxIdleTimeout   time.Duration
	Allow0RTT        bool
	MaxStreams       int64
	RetryAbovePerSec int
	// Datagrams offers QUIC datagrams (RFC 9221): HTTP Datagrams, or a
	// Mode B relay's.
	Datagrams bool
	// MaxUniStreams, when set, replaces QUICConfig.MaxUniStreams.
	MaxUniStreams int64
}

// SetLive applies v to the connections that arrive from now on.
func (l *QUICListener) SetLive(v QUICLive) { l.live.Store(&v) }

// deriveKey turns the retry secret file's bytes into the token and
// stateless-reset keys (domain-separated SHA-256, so one secret serves
// both without reuse).
func deriveKey(secret []byte, label string) [32]byte {
	h := sha256.New()
	h.Write([]byte("expressgateway quic " + label + "\x00"))
	h.Write(secret)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// ReadRetrySecret reads a retry secret file (see ReadSecret).
func ReadRetrySecret(path string) ([]byte, error) { return ReadSecret("retry secret", path) }

// ReadSecret reads a secret file (what names it in errors); it must hold
// at least 16 bytes and pass the config check's key-file rule
// (conf.CheckPrivateFile). A missing file is created with 32 random
// bytes, mode 0600, so a first boot needs no extra step and later boots
// (and other instances given the same file) derive the same keys.
func ReadSecret(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		rand.Read(b)
		// Written aside and linked into place, so another instance
		// starting at once never reads a half-written file: the first
		// link wins and the others read it.
		f, cerr := os.CreateTemp(filepath.Dir(path), ".secret-*")
		if cerr != nil {
			return nil, fmt.Errorf("create %s %s: %w", what, path, cerr)
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(b)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Link(f.Name(), path)
		}
		if errors.Is(werr, fs.ErrExist) {
			return ReadSecret(what, path)
		}
		if werr != nil {
			return nil, fmt.Errorf("write %s %s: %w", what, path, werr)
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if err := conf.CheckPrivateFile(path); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("%s %s: want at least 16 bytes, got %d", what, path, len(b))
	}
	return b, nil
}

// ListenQUIC binds the UDP socket and starts the QUIC endpoint.
func ListenQUIC(cfg *QUICConfig) (*QUICListener, error) {
	ua, err := net.ResolveUDPAddr("udp", cfg.Address)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	if cfg.MaxUDPPayload > 0 && cfg.MaxUDPPayload < MaxQUICPacket {
		if err := CapUDPPayload(udp, cfg.MaxUDPPayload); err != nil {
			udp.Close()
			return nil, err
		}
	}
	l := &QUICListener{cfg: cfg, udp: udp}
	l.SetLive(QUICLive{MaxIdleTimeout: cfg.MaxIdleTimeout, Allow0RTT: cfg.Allow0RTT, MaxStreams: cfg.MaxStreams, RetryAbovePerSec: cfg.RetryAbovePerSec, Datagrams: cfg.Datagrams})
	tk := quic.TokenGeneratorKey(deriveKey(cfg.RetrySecret, "token"))
	sk := quic.StatelessResetKey(deriveKey(cfg.RetrySecret, "reset"))
	l.tr = &quic.Transport{
		Conn:                udp,
		TokenGeneratorKey:   &tk,
		StatelessResetKey:   &sk,
		VerifySourceAddress: l.needRetry,
		ConnContext:         l.admit,
	}
	base := cfg.TLS()
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h3"},
		// Rotated certificates apply to new handshakes.
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := cfg.TLS().Clone()
			c.MinVersion = tls.VersionTLS13
			c.NextProtos = []string{"h3"}
			if cfg.ALPN != nil {
				if c.NextProtos = cfg.ALPN(hello.SupportedProtos); len(c.NextProtos) == 0 {
					return nil, fmt.Errorf("accept: no application protocol of %q is accepted", hello.SupportedProtos)
				}
			}
			// Each handshake takes the keys of its time, so they rotate
			// without a timer; the per-handshake config would otherwise
			// get random ones.
			if cfg.TicketKeys != nil {
				c.SetSessionTicketKeys(cfg.TicketKeys(time.Now()))
			}
			return c, nil
		},
	}
	if cfg.TicketKeys != nil {
		tlsCfg.SetSessionTicketKeys(cfg.TicketKeys(time.Now()))
	}
	if base != nil {
		tlsCfg.Certificates = base.Certificates
	}
	qc := &quic.Config{
		HandshakeIdleTimeout:           cfg.HandshakeTimeout,
		MaxIdleTimeout:                 cfg.MaxIdleTimeout,
		InitialStreamReceiveWindow:     cfg.StreamWindow,
		MaxStreamReceiveWindow:         cfg.StreamWindow,
		InitialConnectionReceiveWindow: cfg.ConnWindow,
		MaxConnectionReceiveWindow:     cfg.ConnWindow,
		MaxIncomingStreams:             cfg.MaxStreams,
		// Control, QPACK encoder and decoder, plus room for greased types.
		MaxIncomingUniStreams:      8,
		RequireStreamCreditRelease: true,
		Allow0RTT:                  cfg.Allow0RTT,
		EnableDatagrams:            cfg.Datagrams,
	}
	if cfg.MaxUniStreams > 0 {
		qc.MaxIncomingUniStreams = cfg.MaxUniStreams
	}
	perConn := *qc
	qc.GetConfigForClient = func(*quic.ClientInfo) (*quic.Config, error) {
		v := l.live.Load()
		c := perConn
		c.MaxIdleTimeout, c.Allow0RTT, c.MaxIncomingStreams = v.MaxIdleTimeout, v.Allow0RTT, v.MaxStreams
		c.EnableDatagrams = v.Datagrams
		if v.MaxUniStreams > 0 {
			c.MaxIncomingUniStreams = v.MaxUniStreams
		}
		return &c, nil
	}
	ln, err := l.tr.ListenEarly(tlsCfg, qc)
	if err != nil {
		l.tr.Close()
		udp.Close()
		return nil, err
	}
	l.ln = ln
	return l, nil
}

// Addr is the bound UDP address.
func (l *QUICListener) Addr() net.Addr { return l.udp.LocalAddr() }

// needRetry is quic-go's VerifySourceAddress: true sends a stateless Retry
// to an Initial that carries no valid token (RFC 9000 §8.1.2).
func (l *QUICListener) needRetry(net.Addr) bool {
	if l.overRate() {
		if l.cfg.OnRetry != nil {
			l.cfg.OnRetry()
		}
		return true
	}
	return false
}

func (l *QUICListener) overRate() bool {
	above := l.live.Load().RetryAbovePerSec
	if above <= 0 {
		return true
	}
	now := time.Now().Unix()
	if l.rateSec.Load() != now {
		l.rateSec.Store(now)
		l.rateN.Store(0)
	}
	return l.rateN.Add(1) > int64(above)
}

// errQUICRejected is the ConnContext verdict for a connection over a cap;
// quic-go answers it with CONNECTION_REFUSED before any handshake work.
var errQUICRejected = errors.New("accept: quic connection over cap")

// admit is quic-go's ConnContext: the per-IP and global caps, counted
// from the first Initial until the connection's context ends.
func (l *QUICListener) admit(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	if l.cfg.Gate == nil {
		return ctx, nil
	}
	ip := addrPort(info.RemoteAddr).Addr().Unmap()
	if r := l.cfg.Gate.Admit(ip); r != Admitted {
		if l.cfg.OnReject != nil {
			l.cfg.OnReject(r)
		}
		return nil, errQUICRejected
	}
	context.AfterFunc(ctx, func() { l.cfg.Gate.Leave(ip) })
	return ctx, nil
}

// Serve accepts connections until ctx ends, running handle for each in its
// own goroutine, and returns once every handler has returned.
func (l *QUICListener) Serve(ctx context.Context, handle func(ctx context.Context, c *quic.Conn, remote netip.AddrPort)) {
	stop := context.AfterFunc(ctx, func() { l.ln.Close() })
	defer stop()
	for {
		c, err := l.ln.Accept(context.Background())
		if err != nil {
			break
		}
		remote := addrPort(c.RemoteAddr())
		l.wg.Go(func() { handle(ctx, c, remote) })
	}
	l.wg.Wait()
}

// Close stops the endpoint: connections are closed, the socket released.
func (l *QUICListener) Close() error {
	l.ln.Close()
	err := l.tr.Close()
	l.udp.Close()
	return err
}
