package route

import (
	"strconv"

	"github.com/expressgateway/expressgateway/conf"
)

// sticky keeps a client on the backend named by its session cookie; a
// request without a valid cookie, or whose backend is unusable, gets one
// from the fallback algorithm, and Pool.StickyCookie tells the caller to
// set the cookie on the response.
type sticky struct{ fallback Picker }

// stickyConf is the session cookie of a sticky pool.
type stickyConf struct {
	name     string
	ttl      int
	fallback string
}

func newStickyConf(c *conf.Sticky) *stickyConf {
	s := &stickyConf{name: conf.DefaultStickyCookie, ttl: conf.DefaultStickyTTLSec, fallback: conf.DefaultAlgorithm}
	if c != nil {
		if c.Cookie != "" {
			s.name = c.Cookie
		}
		if c.TTLSec != 0 {
			s.ttl = c.TTLSec
		}
		if c.Fallback != "" {
			s.fallback = c.Fallback
		}
	}
	return s
}

// cookieFor builds the whole Set-Cookie value naming a backend id.
func (s *stickyConf) cookieFor(id string) string {
	v := s.name + "=" + id + "; Path=/; HttpOnly; SameSite=Lax"
	if s.ttl > 0 {
		v += "; Max-Age=" + strconv.Itoa(s.ttl)
	}
	return v
}

// Pick implements Picker.
func (s *sticky) Pick(p *Pool, k Key) *Backend {
	if v, ok := cookieValue(k.Head, p.sticky.name); ok {
		if b := p.byID[v]; b != nil && p.Usable(b, &k) {
			return b
		}
	}
	return s.fallback.Pick(p, k)
}
