package h3

import (
	"io"
	"strconv"

	"github.com/quic-go/qpack"

	"github.com/expressgateway/expressgateway/frames"
)

// Limits bound one decoded field section.
type Limits struct {
	// MaxSize is the cap in RFC 9114 §4.2.2 units (name + value + 32 per
	// field); 0 means DefaultMaxFieldSectionSize.
	MaxSize int
	// MaxFields caps the number of fields; 0 means DefaultMaxFields.
	MaxFields int
	// Underscore is the policy for request field names with "_" (the zero
	// value rejects).
	Underscore frames.UnderscorePolicy
}

func (l *Limits) underscore() frames.UnderscorePolicy {
	if l == nil {
		return frames.UnderscoreReject
	}
	return l.Underscore
}

func (l *Limits) size() int {
	if l == nil || l.MaxSize <= 0 {
		return DefaultMaxFieldSectionSize
	}
	return l.MaxSize
}

func (l *Limits) fields() int {
	if l == nil || l.MaxFields <= 0 {
		return DefaultMaxFields
	}
	return l.MaxFields
}

// decoder is stateless with the dynamic table off, so one serves everyone.
var decoder = qpack.NewDecoder()

// Malformed-message verdicts (RFC 9114 §4.1.2: a malformed request or
// response is a stream error of type H3_MESSAGE_ERROR).
var (
	errPseudoAfterRegular = msgErr("h3_pseudo_after_regular", "pseudo-header after a regular field")
	errPseudoUnknown      = msgErr("h3_pseudo_unknown", "unknown or misplaced pseudo-header")
	errPseudoDuplicate    = msgErr("h3_pseudo_duplicate", "pseudo-header repeated")
	errPseudoMissing      = msgErr("h3_pseudo_missing", "required pseudo-header missing")
	errFieldName          = msgErr("h3_field_name", "invalid field name")
	errFieldValue         = msgErr("h3_field_value", "invalid field value")
	errConnectionSpecific = msgErr("h3_connection_specific", "connection-specific field")
	errTE                 = msgErr("h3_te", "te other than trailers")
	errContentLength      = msgErr("h3_content_length", "invalid or conflicting content-length")
	errHostMismatch       = msgErr("h3_host_mismatch", ":authority and host differ")
	errAuthority          = msgErr("h3_authority", "invalid :authority")
	errPath               = msgErr("h3_path", "invalid :path")
	errStatus             = msgErr("h3_status", "invalid :status")
	errPseudoInTrailers   = msgErr("h3_pseudo_in_trailers", "pseudo-header in trailers")
	errUnderscore         = msgErr("h3_underscore", "underscore in field name")
)

// section walks a field section line by line against the size and count
// caps, so that a QPACK bomb stops at the cap instead of expanding.
type section struct {
	next   qpack.DecodeFunc
	size   int
	count  int
	lim    *Limits
	pseudo bool // still in the pseudo-header block
}

func newSection(block []byte, lim *Limits) section {
	return section{next: decoder.Decode(block), lim: lim, pseudo: true}
}

// line returns the next field, io.EOF at the end, or a verdict.
func (s *section) line() (qpack.HeaderField, error) {
	hf, err := s.next()
	if err == io.EOF {
		return hf, io.EOF
	}
	if err != nil {
		// RFC 9204 §2.2.3 and §4.5.1.1: a reference the empty dynamic table
		// cannot satisfy, or any undecodable representation, "MUST treat
		// this as a connection error of type QPACK_DECOMPRESSION_FAILED".
		return hf, ErrQPACKDecompression
	}
	s.size += len(hf.Name) + len(hf.Value) + FieldOverhead
	if s.size > s.lim.size() {
		return hf, ErrFieldSectionTooLarge
	}
	if hf.IsPseudo() {
		// RFC 9114 §4.3: "All pseudo-header fields MUST appear in the
		// header section before regular header fields."
		if !s.pseudo {
			return hf, errPseudoAfterRegular
		}
		return hf, nil
	}
	s.pseudo = false
	s.count++
	if s.count > s.lim.fields() {
		return hf, ErrTooManyFields
	}
	if !validName(hf.Name) {
		return hf, errFieldName
	}
	if !validValue(hf.Value) {
		return hf, errFieldValue
	}
	// RFC 9114 §4.2: "An endpoint MUST NOT generate an HTTP/3 field section
	// containing connection-specific fields; any message containing
	// connection-specific fields MUST be treated as malformed." The only
	// exception is TE: trailers.
	switch hf.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return hf, errConnectionSpecific
	case "te":
		if hf.Value != "trailers" {
			return hf, errTE
		}
	}
	return hf, nil
}

// validName accepts lowercase tokens only (RFC 9114 §4.2: "Characters in
// field names MUST be converted to lowercase"; a name with uppercase is
// malformed).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenLower[s[i]] {
			return false
		}
	}
	return true
}

// validValue refuses CR, LF and NUL anywhere and whitespace at either end
// (RFC 9114 §4.2 defers to RFC 9110 §5.5), so no encoder ever re-checks.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n', 0:
			return false
		}
	}
	if s != "" && (isWS(s[0]) || isWS(s[len(s)-1])) {
		return false
	}
	return true
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

// tokenLower is RFC 9110 §5.6.2 tchar without uppercase letters.
var tokenLower = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// contentLength folds a content-length field into *cl (-1: none yet).
func contentLength(v string, cl *int64) error {
	n, ok := frames.ParseContentLength(v)
	if !ok {
		return errContentLength
	}
	if *cl >= 0 && *cl != n {
		return errContentLength
	}
	*cl = n
	return nil
}

// DecodeRequest decodes a request's HEADERS field section into a neutral
// head (RFC 9114 §4.3.1). Host is folded into Authority; content-length
// stays in Fields and sets ContentLength.
func DecodeRequest(block []byte, lim *Limits) (*frames.Head, error) {
	h := &frames.Head{ContentLength: -1, Proto: "HTTP/3"}
	s := newSection(block, lim)
	var seen [5]bool // method, scheme, authority, path, protocol
	host, hasHost := "", false
	us, underscore := lim.underscore(), false
	for {
		hf, err := s.line()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if !hf.IsPseudo() {
			// A rejected name answers 400 once the section is known to be
			// well-formed otherwise.
			if v := us.FieldVerdict(hf.Name); v != frames.FieldKeep {
				underscore = underscore || v == frames.FieldReject
				continue
			}
		}
		if hf.IsPseudo() {
			i := -1
			switch hf.Name {
			case ":method":
				i, h.Method = 0, hf.Value
			case ":scheme":
				i, h.Scheme = 1, hf.Value
			case ":authority":
				i, h.Authority = 2, hf.Value
			case ":path":
				i, h.Path = 3, hf.Value
			case ":protocol":
				i, h.Protocol = 4, hf.Value
			default:
				return nil, errPseudoUnknown
			}
			if seen[i] {
				return nil, errPseudoDuplicate
			}
			seen[i] = true
			if !validValue(hf.Value) {
				return nil, errFieldValue
			}
			continue
		}
		switch hf.Name {
		case "host":
			if hasHost {
				return nil, errHostMismatch
			}
			host, hasHost = hf.Value, true
			continue
		case "content-length":
			if err := contentLength(hf.Value, &h.ContentLength); err != nil {
				return nil, err
			}
			if h.Fields.Has("content-length") {
				continue
			}
		}
		h.Fields = append(h.Fields, frames.Field{Name: hf.Name, Value: hf.Value})
	}
	if !seen[0] || h.Method == "" || !validMethod(h.Method) {
		return nil, errPseudoMissing
	}
	// RFC 9114 §4.3.1: "If both fields are present, they MUST contain the
	// same value."
	if hasHost {
		if seen[2] && !frames.SameAuthority(host, h.Authority) {
			return nil, errHostMismatch
		}
		if !seen[2] {
			h.Authority = host
		}
	}
	// RFC 9114 §4.3.1: ":authority ... MUST NOT include the deprecated
	// userinfo subcomponent for "http" or "https" schemes."
	for i := 0; i < len(h.Authority); i++ {
		if c := h.Authority[i]; c == '@' || c == ' ' || c == '/' {
			return nil, errAuthority
		}
	}
	if h.Method == "CONNECT" && !seen[4] {
		// RFC 9114 §4.4: "The :scheme and :path pseudo-header fields are
		// omitted", and :authority is required.
		if seen[1] || seen[3] || h.Authority == "" {
			return nil, errPseudoMissing
		}
		return underscoreVerdict(h, underscore)
	}
	if seen[4] && h.Method != "CONNECT" {
		return nil, errPseudoUnknown
	}
	// RFC 9114 §4.3.1: "All HTTP/3 requests MUST include exactly one value
	// for the :method, :scheme, and :path pseudo-header fields, unless the
	// request is a CONNECT request"; https needs an authority or host.
	if !seen[1] || !seen[3] || h.Scheme == "" {
		return nil, errPseudoMissing
	}
	if (h.Scheme == "https" || h.Scheme == "http") && h.Authority == "" {
		return nil, errPseudoMissing
	}
	if h.Path == "" || (h.Path[0] != '/' && !(h.Path == "*" && h.Method == "OPTIONS")) {
		return nil, errPath
	}
	return underscoreVerdict(h, underscore)
}

// underscoreVerdict refuses a well-formed request that carried a field
// name the underscore policy rejects.
func underscoreVerdict(h *frames.Head, rejected bool) (*frames.Head, error) {
	if rejected {
		return nil, errUnderscore
	}
	return h, nil
}

func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !tokenLower[c] && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// DecodeResponse decodes a response's HEADERS field section (RFC 9114
// §4.3.2): :status and fields.
func DecodeResponse(block []byte, lim *Limits) (*frames.Head, error) {
	h := &frames.Head{ContentLength: -1, Proto: "HTTP/3"}
	s := newSection(block, lim)
	for {
		hf, err := s.line()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if hf.IsPseudo() {
			if hf.Name != ":status" {
				return nil, errPseudoUnknown
			}
			if h.Status != 0 {
				return nil, errPseudoDuplicate
			}
			if len(hf.Value) != 3 {
				return nil, errStatus
			}
			n, err := strconv.Atoi(hf.Value)
			if err != nil || n < 100 || n > 599 {
				return nil, errStatus
			}
			h.Status = n
			continue
		}
		if hf.Name == "content-length" {
			if err := contentLength(hf.Value, &h.ContentLength); err != nil {
				return nil, err
			}
			if h.Fields.Has("content-length") {
				continue
			}
		}
		h.Fields = append(h.Fields, frames.Field{Name: hf.Name, Value: hf.Value})
	}
	if h.Status == 0 {
		return nil, errPseudoMissing
	}
	return h, nil
}

// DecodeTrailers decodes a request's trailer section (RFC 9114 §4.1):
// fields only, under lim's underscore policy.
func DecodeTrailers(block []byte, lim *Limits) (frames.Fields, error) {
	var fs frames.Fields
	s := newSection(block, lim)
	us, underscore := lim.underscore(), false
	for {
		hf, err := s.line()
		if err == io.EOF {
			if underscore {
				return nil, errUnderscore
			}
			return fs, nil
		}
		if err != nil {
			return nil, err
		}
		// RFC 9114 §4.3: "Pseudo-header fields MUST NOT appear in trailer
		// sections."
		if hf.IsPseudo() {
			return nil, errPseudoInTrailers
		}
		if v := us.FieldVerdict(hf.Name); v != frames.FieldKeep {
			underscore = underscore || v == frames.FieldReject
			continue
		}
		fs = append(fs, frames.Field{Name: hf.Name, Value: hf.Value})
	}
}

// Encoder encodes field sections with the static table and Huffman strings
// only (no dynamic table, so no encoder stream and no blocked streams). It
// is owned by one goroutine.
type Encoder struct {
	w   appendWriter
	enc *qpack.Encoder
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// NewEncoder returns an Encoder.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.enc = qpack.NewEncoder(&e.w)
	return e
}

func (e *Encoder) field(name, value string) {
	e.enc.WriteField(qpack.HeaderField{Name: name, Value: value})
}

func (e *Encoder) done() []byte {
	e.enc.Close()
	b := e.w.b
	e.w.b = nil
	return b
}

// skipOnWire reports fields HTTP/3 must not carry (RFC 9114 §4.2) or that
// the encoder writes itself (content-length from ContentLength, host as
// :authority).
func skipOnWire(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length", "host":
		return true
	}
	return false
}

func (e *Encoder) fields(fs frames.Fields) {
	for _, f := range fs {
		if skipOnWire(f.Name) || (f.Name == "te" && f.Value != "trailers") {
			continue
		}
		e.field(f.Name, f.Value)
	}
}

// AppendResponse appends the field section of a response head to dst.
// content-length is written from h.ContentLength when it is known and the
// status is not 1xx or 204 (RFC 9110 §8.6; for HEAD and 304 it is the
// length the body would have had).
func (e *Encoder) AppendResponse(dst []byte, h *frames.Head) []byte {
	e.w.b = dst
	e.field(":status", strconv.Itoa(h.Status))
	e.fields(h.Fields)
	if h.ContentLength >= 0 && h.Status >= 200 && h.Status != 204 {
		e.field("content-length", strconv.FormatInt(h.ContentLength, 10))
	}
	return e.done()
}

// AppendRequest appends the field section of a request head to dst.
func (e *Encoder) AppendRequest(dst []byte, h *frames.Head) []byte {
	e.w.b = dst
	e.field(":method", h.Method)
	if h.Method != "CONNECT" || h.Protocol != "" {
		e.field(":scheme", h.Scheme)
	}
	if h.Authority != "" {
		e.field(":authority", h.Authority)
	}
	if h.Method != "CONNECT" || h.Protocol != "" {
		e.field(":path", h.Path)
	}
	if h.Protocol != "" {
		e.field(":protocol", h.Protocol)
	}
	e.fields(h.Fields)
	if h.ContentLength >= 0 {
		e.field("content-length", strconv.FormatInt(h.ContentLength, 10))
	}
	return e.done()
}

// AppendTrailers appends a trailer section to dst. The caller sends no
// trailer HEADERS frame for an empty list.
func (e *Encoder) AppendTrailers(dst []byte, fs frames.Fields) []byte {
	e.w.b = dst
	e.fields(fs)
	return e.done()
}
