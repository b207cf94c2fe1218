package frames

import "strings"

// Field is one header or trailer field. Name is lowercase; Value was
// validated by the decoder that produced it (no CR, LF or NUL), so no
// encoder ever has to re-check it.
type Field struct {
	Name  string
	Value string
}

// Fields is an ordered field list. Order is kept (it matters for repeated
// fields such as set-cookie); lookups are linear, which beats a map for the
// 10–30 fields of a typical head and allocates nothing.
type Fields []Field

// Get returns the first value of name (lowercase).
func (fs Fields) Get(name string) (string, bool) {
	for i := range fs {
		if fs[i].Name == name {
			return fs[i].Value, true
		}
	}
	return "", false
}

// Value returns the first value of name, or "".
func (fs Fields) Value(name string) string {
	v, _ := fs.Get(name)
	return v
}

// Has reports whether name is present.
func (fs Fields) Has(name string) bool {
	_, ok := fs.Get(name)
	return ok
}

// Count returns how many fields are named name.
func (fs Fields) Count(name string) int {
	n := 0
	for i := range fs {
		if fs[i].Name == name {
			n++
		}
	}
	return n
}

// Add appends a field.
func (fs *Fields) Add(name, value string) { *fs = append(*fs, Field{name, value}) }

// Set replaces every field named name by one with value.
func (fs *Fields) Set(name, value string) {
	fs.Del(name)
	fs.Add(name, value)
}

// Del removes every field named name, in place.
func (fs *Fields) Del(name string) {
	out := (*fs)[:0]
	for _, f := range *fs {
		if f.Name != name {
			out = append(out, f)
		}
	}
	clear((*fs)[len(out):])
	*fs = out
}

// HasToken reports whether any comma-separated element of the fields named
// name equals token, case-insensitively (RFC 9110 §5.6.1 lists).
func (fs Fields) HasToken(name, token string) bool {
	found := false
	fs.EachToken(name, func(t string) bool {
		if strings.EqualFold(t, token) {
			found = true
			return false
		}
		return true
	})
	return found
}

// EachToken calls fn with each trimmed, non-empty comma-separated element of
// the fields named name, until fn returns false.
func (fs Fields) EachToken(name string, fn func(string) bool) {
	for i := range fs {
		if fs[i].Name != name {
			continue
		}
		v := fs[i].Value
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			t = strings.Trim(t, " \t")
			if t == "" {
				continue
			}
			if !fn(t) {
				return
			}
		}
	}
}

// Size is the RFC 9113 §6.5.2 size of the list: name + value + 32 per field.
func (fs Fields) Size() int {
	n := 0
	for i := range fs {
		n += len(fs[i].Name) + len(fs[i].Value) + 32
	}
	return n
}

// Head is a request or response head, or (Fields only) a trailer block.
// Requests set Method, Scheme, Authority and Path (and Protocol for an
// extended CONNECT); responses set Status. Fields never holds
// pseudo-headers or the Host field: Authority carries the host for every
// protocol, and each encoder writes it in its own form.
type Head struct {
	Method    string
	Scheme    string
	Authority string
	Path      string
	Protocol  string // :protocol of an extended CONNECT (RFC 8441, RFC 9220)
	Status    int

	Fields Fields

	// ContentLength is the declared body length, or -1 when unknown
	// (chunked, close-delimited, or an H2/H3 message without the field).
	ContentLength int64

	// Proto names the wire protocol the head arrived on: "HTTP/1.1",
	// "HTTP/1.0", "HTTP/2", "HTTP/3". It is informational (logs, Via).
	Proto string
}

// IsRequest reports whether the head is a request head.
func (h *Head) IsRequest() bool { return h.Method != "" }

// Clone returns a deep copy of the head (fields copied, strings shared).
func (h *Head) Clone() *Head {
	c := *h
	c.Fields = append(Fields(nil), h.Fields...)
	return &c
}
