package conf

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Problem is one thing wrong with a config: where it is (the file and line,
// or the environment variable that set the key), the key path (TOML dotted
// form, with list indexes: listeners[0].tls.cert_path) and why.
type Problem struct {
	File string
	// Line is the 1-based line of the key (or of the nearest table that
	// holds it) in File; 0 when the key is not in the file.
	Line int
	// Column is set for TOML syntax errors only.
	Column int
	// Env names the EG_ variable that set the key; the file is not to blame.
	Env    string
	Key    string
	Reason string
}

func (p Problem) Error() string {
	var where string
	switch {
	case p.Env != "":
		where = p.Env
	case p.File != "" && p.Line > 0 && p.Column > 0:
		where = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	case p.File != "" && p.Line > 0:
		where = fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		where = p.File
	}
	var b strings.Builder
	if where != "" {
		b.WriteString(where)
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Reason)
	return b.String()
}

// Problems collects every problem found, so that a config is reported whole
// and never half-booted.
type Problems struct {
	file string
	// lines maps key paths to their line in the file (lines.go).
	lines lineIndex
	// env maps key paths set by an environment override to its variable.
	env  map[string]string
	list []Problem
}

// Addf records a problem at key.
func (ps *Problems) Addf(key, format string, args ...any) {
	p := Problem{File: ps.file, Key: printable(key), Reason: printable(fmt.Sprintf(format, args...))}
	if v := ps.envOf(key); v != "" {
		p.Env = v
	} else {
		p.Line = ps.lines.find(key)
	}
	ps.list = append(ps.list, p)
}

// addEnv records a problem with the environment variable name.
func (ps *Problems) addEnv(name, key, format string, args ...any) {
	ps.list = append(ps.list, Problem{Env: name, Key: printable(key), Reason: printable(fmt.Sprintf(format, args...))})
}

// addAt records a problem at a position of the file (a syntax error).
func (ps *Problems) addAt(line, col int, reason string) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Column: col, Reason: printable(reason)})
}

// printable escapes control characters (a quoted TOML key may hold a
// newline), so that each problem stays one line of output.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// envOf returns the variable that set key or a table holding it.
func (ps *Problems) envOf(key string) string {
	for k, v := range ps.env {
		if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") {
			return v
		}
	}
	return ""
}

// Len returns the number of problems recorded.
func (ps *Problems) Len() int { return len(ps.list) }

// List returns the problems recorded, in report order.
func (ps *Problems) List() []Problem {
	ps.sort()
	return ps.list
}

// sort orders the file's problems by line, then the environment's, each
// by key within, so output is stable and reads top to bottom.
func (ps *Problems) sort() {
	sort.SliceStable(ps.list, func(i, j int) bool {
		a, b := ps.list[i], ps.list[j]
		if (a.Env != "") != (b.Env != "") {
			return a.Env == ""
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Key < b.Key
	})
}

// Err returns every problem as a *ProblemsError, or nil.
func (ps *Problems) Err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &ProblemsError{Problems: ps.List()}
}

// ProblemsError is the error of a config that does not load: every
// problem found, in report order, one per line.
type ProblemsError struct{ Problems []Problem }

func (e *ProblemsError) Error() string {
	errs := make([]error, len(e.Problems))
	for i := range e.Problems {
		errs[i] = e.Problems[i]
	}
	return errors.Join(errs...).Error()
}

// key joins key path parts: key("listeners[0]", "tls", "cert_path").
func key(parts ...string) string { return strings.Join(parts, ".") }

// idx formats a list element's key: idx("listeners", 0) = "listeners[0]".
func idx(name string, i int) string { return fmt.Sprintf("%s[%d]", name, i) }
