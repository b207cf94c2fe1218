package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expressgateway/expressgateway/stages"
)

// State is the process lifecycle the probes report.
type State int32

// The lifecycle states.
const (
	Starting State = iota
	Ready
	Draining
)

var stateNames = [...]string{Starting: "starting", Ready: "ok", Draining: "draining"}

// Server serves the admin endpoints.
type Server struct {
	state     atomic.Int32
	tokenHash []byte // SHA-256 of the bearer token; nil: /metrics is open
	srv       *http.Server
	ln        net.Listener
	wg        sync.WaitGroup
	mux       *http.ServeMux
}

// New returns an admin server; tokenHashHex is [admin].api_token_hash.
func New(tokenHashHex string) (*Server, error) {
	s := &Server{}
	if tokenHashHex != "" {
		h, err := hex.DecodeString(tokenHashHex)
		if err != nil || len(h) != sha256.Size {
			return nil, errors.New("admin: api_token_hash is not a SHA-256 hex digest")
		}
		s.tokenHash = h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", s.metrics)
	mux.HandleFunc("/livez", s.live)
	mux.HandleFunc("/healthz", s.live)
	mux.HandleFunc("/readyz", s.ready)
	mux.HandleFunc("/startupz", s.startup)
	s.mux = mux
	s.srv = &http.Server{Handler: getOnly(mux), ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// SetState moves the lifecycle state.
func (s *Server) SetState(st State) { s.state.Store(int32(st)) }

// Start listens on addr and serves in a goroutine the server owns.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.wg.Go(func() { s.srv.Serve(ln) })
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server and waits for it.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	s.wg.Wait()
}

func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	stages.WritePrometheus(w)
}

// authorized answers 401 or 403 and returns false unless the request
// carries the bearer token (or none is configured).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.tokenHash != nil {
		// RFC 6750 §3: no token is 401 with the challenge, a wrong one 403.
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="expressgateway"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return false
		}
		sum := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(sum[:], s.tokenHash) != 1 {
			http.Error(w, "forbidden", http.StatusForbidden)
			return false
		}
	}
	return true
}

func (s *Server) status(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(`{"status":"` + stateNames[s.state.Load()] + `"}` + "\n"))
}

func (s *Server) live(w http.ResponseWriter, _ *http.Request) { s.status(w, http.StatusOK) }

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if State(s.state.Load()) != Ready {
		s.status(w, http.StatusServiceUnavailable)
		return
	}
	s.status(w, http.StatusOK)
}

func (s *Server) startup(w http.ResponseWriter, _ *http.Request) {
	if State(s.state.Load()) == Starting {
		s.status(w, http.StatusServiceUnavailable)
		return
	}
	s.status(w, http.StatusOK)
}

//go:embed status.html
var statusPage []byte

// ServeStatus adds /status, a live HTML status page (no external assets;
// its script polls /status.json), and /status.json, status() as JSON;
// both behind the token, as /metrics is.
func (s *Server) ServeStatus(status func() any) {
	s.mux.HandleFunc("/status.json", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(status())
	})
	s.mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
		w.Write(statusPage)
	})
}
