package conf

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config: the file, the key path
// (TOML dotted form, with list indexes: listeners[0].tls.cert_path) and why.
type Problem struct {
	File   string
	Key    string
	Reason string
}

func (p Problem) Error() string {
	if p.File == "" {
		return fmt.Sprintf("%s: %s", p.Key, p.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.Key, p.Reason)
}

// Problems collects every problem found, so that a config is reported whole
// and never half-booted (DESIGN §5).
type Problems struct {
	file string
	list []Problem
}

// Addf records a problem at key.
func (ps *Problems) Addf(key, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Key: key, Reason: fmt.Sprintf(format, args...)})
}

// Len returns the number of problems recorded.
func (ps *Problems) Len() int { return len(ps.list) }

// Err returns every problem joined (sorted by key for stable output), or nil.
func (ps *Problems) Err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Key < ps.list[j].Key })
	errs := make([]error, len(ps.list))
	for i := range ps.list {
		errs[i] = ps.list[i]
	}
	return errors.Join(errs...)
}

// key joins key path parts: key("listeners[0]", "tls", "cert_path").
func key(parts ...string) string { return strings.Join(parts, ".") }

// idx formats a list element's key: idx("listeners", 0) = "listeners[0]".
func idx(name string, i int) string { return fmt.Sprintf("%s[%d]", name, i) }
