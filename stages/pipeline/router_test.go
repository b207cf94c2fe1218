package pipeline

import "testing"

func TestTable_FirstMatchWinsThenDefault(t *testing.T) {
	api := &Route{Name: "api", host: "api.example.com", pathPrefix: "/v1"}
	wild := &Route{Name: "wild", host: "*.example.com"}
	any := &Route{Name: "static", pathPrefix: "/static"}
	def := &Route{Name: "default"}
	tb := &Table{routes: []*Route{api, wild, any}, def: def}
	for _, c := range []struct{ auth, path, want string }{
		{"api.example.com", "/v1/users", "api"},
		{"API.example.com:8443", "/v1", "api"},
		{"api.example.com", "/v2", "wild"},
		{"www.example.com", "/", "wild"},
		{"example.com", "/static/x.css", "static"},
		{"other.org", "/", "default"},
		{"[::1]:80", "/", "default"},
	} {
		if got := tb.Match(c.auth, c.path); got.Name != c.want {
			t.Errorf("%s%s → %s, want %s", c.auth, c.path, got.Name, c.want)
		}
	}
}
