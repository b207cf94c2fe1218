package admin

import (
	"net/http"
	"net/http/pprof"
)

// ServeConfig adds /config: the running config as TOML (render is called
// per request, so a reload shows at once), behind the token.
func (s *Server) ServeConfig(render func() ([]byte, error)) {
	s.mux.HandleFunc("/config", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		b, err := render()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/toml; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	})
}

// ServeDebug adds the runtime profiles under /debug/pprof/, behind the
// token: a profile shows code paths and timings an outsider has no
// business reading. They are registered on this server's own mux, never
// on http.DefaultServeMux, so no other listener serves them.
func (s *Server) ServeDebug() {
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.authorized(w, r) {
				h(w, r)
			}
		}
	}
	s.mux.HandleFunc("/debug/pprof/", guard(pprof.Index))
	s.mux.HandleFunc("/debug/pprof/cmdline", guard(pprof.Cmdline))
	s.mux.HandleFunc("/debug/pprof/profile", guard(pprof.Profile))
	s.mux.HandleFunc("/debug/pprof/symbol", guard(pprof.Symbol))
	s.mux.HandleFunc("/debug/pprof/trace", guard(pprof.Trace))
}
