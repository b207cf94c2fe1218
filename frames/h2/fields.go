package h2

import (
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/frames"
)

// RequestError is a request that is well-formed HTTP/2 but that we answer
// with an HTTP status instead of a stream reset (for example :authority and
// host that disagree: 400).
type RequestError struct {
	Status int
	Reason string
}

func (e *RequestError) Error() string { return "h2: request refused: " + e.Reason }

// connectionSpecific are the fields RFC 9113 §8.2.2 forbids: "An endpoint
// MUST NOT generate an HTTP/2 message containing connection-specific header
// fields ... any message containing connection-specific header fields MUST
// be treated as malformed."
func connectionSpecific(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// validName reports whether name is a lowercase token (RFC 9110 §5.1,
// RFC 9113 §8.2.1: "A field name MUST NOT contain characters in the ranges
// 0x00-0x20, 0x41-0x5a, or 0x7f-0xff").
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !tokenLower[name[i]] {
			return false
		}
	}
	return true
}

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

// validValue checks a field value (RFC 9113 §8.2.1): "A field value MUST
// NOT contain the zero value (ASCII NUL, 0x00), line feed (ASCII LF, 0x0a),
// or carriage return (ASCII CR, 0x0d) at any position" and "MUST NOT start
// or end with an ASCII whitespace character". Other controls are refused
// too: they would reach an HTTP/1.1 encoder as obs-text tricks.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	if v != "" && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		return false
	}
	return true
}

// validPath accepts an origin-form path or "*": visible ASCII only, so that
// nothing it holds can split an HTTP/1.1 request line.
func validPath(p string) bool {
	if p == "" {
		return false
	}
	if p == "*" {
		return true
	}
	if p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= 0x20 || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validAuthority accepts host[:port] without userinfo (RFC 9113 §8.3.1:
// ":authority MUST NOT include the deprecated userinfo subcomponent").
func validAuthority(a string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c <= 0x20 || c >= 0x7f || c == '@' || c == '/' || c == '?' || c == '#' || c == '\\' {
			return false
		}
	}
	return true
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !tokenLower[c] && !('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alpha && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// validField checks one regular field's name and value.
func validField(id uint32, f hpack.HeaderField) error {
	if !validName(f.Name) {
		// RFC 9113 §8.2.1: uppercase or invalid names are malformed.
		return streamErr(id, ErrCodeProtocol, "h2_bad_field_name")
	}
	if !validValue(f.Value) {
		return streamErr(id, ErrCodeProtocol, "h2_bad_field_value")
	}
	if connectionSpecific(f.Name) {
		return streamErr(id, ErrCodeProtocol, "h2_connection_specific_field")
	}
	return nil
}

// regular validates one regular field and appends it to h. Multiple
// content-length fields must agree; cookie crumbs are joined (RFC 9113
// §8.2.3) so that an HTTP/1.1 backend sees one cookie field.
func regular(id uint32, h *frames.Head, f hpack.HeaderField, trailers bool) error {
	if err := validField(id, f); err != nil {
		return err
	}
	switch f.Name {
	case "te":
		// RFC 9113 §8.2.2: "The only exception to this is the TE header
		// field, which MAY be present in an HTTP/2 request; when it is, it
		// MUST NOT contain any value other than "trailers"."
		if f.Value != "trailers" {
			return streamErr(id, ErrCodeProtocol, "h2_te_not_trailers")
		}
	case "content-length":
		if trailers {
			break
		}
		n, ok := frames.ParseContentLength(f.Value)
		if !ok || (h.ContentLength >= 0 && h.ContentLength != n) {
			// RFC 9113 §8.1.1: a malformed content-length is malformed.
			return streamErr(id, ErrCodeProtocol, "h2_bad_content_length")
		}
		h.ContentLength = n
		return nil // the encoder writes it from ContentLength
	case "host":
		if !trailers {
			return nil // compared with :authority by the caller
		}
	case "cookie":
		for i := range h.Fields {
			if h.Fields[i].Name == "cookie" {
				h.Fields[i].Value += "; " + f.Value
				return nil
			}
		}
	}
	h.Fields = append(h.Fields, frames.Field{Name: f.Name, Value: f.Value})
	return nil
}

// DecodeRequest validates a request header block (RFC 9113 §8.3.1) and
// builds the neutral head. Nothing invalid passes: a malformed block is a
// StreamError(PROTOCOL_ERROR); :authority and host that disagree, or a
// field name with "_" under the reject policy, are a RequestError(400).
// extConnect says we announced SETTINGS_ENABLE_CONNECT_PROTOCOL, so an
// extended CONNECT (RFC 8441 §4) is a request; without it :protocol is an
// unknown pseudo-header.
func DecodeRequest(id uint32, fields []hpack.HeaderField, us frames.UnderscorePolicy, extConnect bool) (*frames.Head, error) {
	h := &frames.Head{ContentLength: -1, Proto: "HTTP/2", Fields: make(frames.Fields, 0, len(fields))}
	var seen [5]bool // method, scheme, authority, path, protocol
	sawRegular, underscore := false, false
	host, hasHost := "", false
	for _, f := range fields {
		if strings.HasPrefix(f.Name, ":") {
			// RFC 9113 §8.3: "All pseudo-header fields MUST appear in a
			// field block before all regular field lines."
			if sawRegular {
				return nil, streamErr(id, ErrCodeProtocol, "h2_pseudo_after_regular")
			}
			var slot int
			switch f.Name {
			case ":method":
				slot, h.Method = 0, f.Value
			case ":scheme":
				slot, h.Scheme = 1, f.Value
			case ":authority":
				slot, h.Authority = 2, f.Value
			case ":path":
				slot, h.Path = 3, f.Value
			case ":protocol":
				if !extConnect {
					return nil, streamErr(id, ErrCodeProtocol, "h2_bad_pseudo")
				}
				slot, h.Protocol = 4, f.Value
			default:
				// RFC 9113 §8.3: "Endpoints MUST treat a request or
				// response that contains undefined or invalid
				// pseudo-header fields as malformed."
				return nil, streamErr(id, ErrCodeProtocol, "h2_bad_pseudo")
			}
			// RFC 9113 §8.3.1: "The same pseudo-header field name MUST NOT
			// appear more than once in a field block."
			if seen[slot] {
				return nil, streamErr(id, ErrCodeProtocol, "h2_duplicate_pseudo")
			}
			seen[slot] = true
			if !validValue(f.Value) {
				return nil, streamErr(id, ErrCodeProtocol, "h2_bad_pseudo_value")
			}
			continue
		}
		sawRegular = true
		if f.Name == "host" {
			if hasHost {
				return nil, &RequestError{Status: 400, Reason: "h2_duplicate_host"}
			}
			host, hasHost = f.Value, true
		}
		if v := us.FieldVerdict(f.Name); v != frames.FieldKeep {
			// Still validated: a malformed block stays malformed. A
			// rejected name answers 400 once the block is known to be
			// well-formed otherwise.
			if err := validField(id, f); err != nil {
				return nil, err
			}
			underscore = underscore || v == frames.FieldReject
			continue
		}
		if err := regular(id, h, f, false); err != nil {
			return nil, err
		}
	}
	if !validMethod(h.Method) {
		return nil, streamErr(id, ErrCodeProtocol, "h2_bad_method")
	}
	if seen[4] && (h.Method != "CONNECT" || h.Protocol == "") {
		// RFC 8441 §4: :protocol belongs to an extended CONNECT only.
		return nil, streamErr(id, ErrCodeProtocol, "h2_bad_protocol")
	}
	if h.Method == "CONNECT" && !seen[4] {
		// RFC 9113 §8.5: "The :scheme and :path pseudo-header fields MUST
		// be omitted" and ":authority ... MUST" be present.
		if seen[1] || seen[3] || !seen[2] || h.Authority == "" || !validAuthority(h.Authority) {
			return nil, streamErr(id, ErrCodeProtocol, "h2_bad_connect")
		}
		return underscoreVerdict(h, underscore)
	}
	// RFC 9113 §8.3.1: "All HTTP/2 requests MUST include exactly one valid
	// value for the :method, :scheme, and :path pseudo-header fields,
	// unless they are CONNECT requests".
	if !seen[0] || !seen[1] || !seen[3] {
		return nil, streamErr(id, ErrCodeProtocol, "h2_missing_pseudo")
	}
	if !validScheme(h.Scheme) {
		return nil, streamErr(id, ErrCodeProtocol, "h2_bad_scheme")
	}
	// RFC 9113 §8.3.1: "This pseudo-header field MUST NOT be empty for
	// "http" or "https" URIs".
	if !validPath(h.Path) || (h.Path == "*" && h.Method != "OPTIONS") {
		return nil, streamErr(id, ErrCodeProtocol, "h2_bad_path")
	}
	if !validAuthority(h.Authority) || (hasHost && !validAuthority(host)) {
		return nil, &RequestError{Status: 400, Reason: "h2_bad_authority"}
	}
	switch {
	case !seen[2]:
		h.Authority = host
	case hasHost && !frames.SameAuthority(host, h.Authority):
		// RFC 9113 §8.3.1: a host that differs from :authority is a
		// request an HTTP/1.1 backend would route elsewhere: refuse it.
		return nil, &RequestError{Status: 400, Reason: "h2_authority_host_mismatch"}
	}
	return underscoreVerdict(h, underscore)
}

// underscoreVerdict refuses a well-formed request that carried a field
// name the underscore policy rejects.
func underscoreVerdict(h *frames.Head, rejected bool) (*frames.Head, error) {
	if rejected {
		return nil, &RequestError{Status: 400, Reason: "h2_underscore"}
	}
	return h, nil
}

// DecodeResponse validates a response header block (RFC 9113 §8.3.2) from a
// backend and builds the neutral head.
func DecodeResponse(id uint32, fields []hpack.HeaderField) (*frames.Head, error) {
	h := &frames.Head{ContentLength: -1, Proto: "HTTP/2", Fields: make(frames.Fields, 0, len(fields))}
	sawStatus, sawRegular := false, false
	for _, f := range fields {
		if strings.HasPrefix(f.Name, ":") {
			if sawRegular || sawStatus || f.Name != ":status" {
				return nil, streamErr(id, ErrCodeProtocol, "h2_resp_bad_pseudo")
			}
			sawStatus = true
			if len(f.Value) != 3 {
				return nil, streamErr(id, ErrCodeProtocol, "h2_resp_bad_status")
			}
			n, err := strconv.Atoi(f.Value)
			if err != nil || n < 100 || n > 999 {
				return nil, streamErr(id, ErrCodeProtocol, "h2_resp_bad_status")
			}
			h.Status = n
			continue
		}
		sawRegular = true
		if f.Name == "te" {
			return nil, streamErr(id, ErrCodeProtocol, "h2_resp_te")
		}
		if err := regular(id, h, f, false); err != nil {
			return nil, err
		}
	}
	if !sawStatus {
		return nil, streamErr(id, ErrCodeProtocol, "h2_resp_missing_status")
	}
	return h, nil
}

// DecodeTrailers validates a trailer block: no pseudo-header fields
// (RFC 9113 §8.1: "Trailers MUST NOT include pseudo-header fields") and the
// regular field rules. us is the underscore policy (UnderscoreAllow for a
// response's trailers); a rejected name resets the stream, as the request
// was already forwarded.
func DecodeTrailers(id uint32, fields []hpack.HeaderField, us frames.UnderscorePolicy) (frames.Fields, error) {
	out := make(frames.Fields, 0, len(fields))
	h := &frames.Head{ContentLength: -1}
	for _, f := range fields {
		if strings.HasPrefix(f.Name, ":") {
			return nil, streamErr(id, ErrCodeProtocol, "h2_pseudo_in_trailers")
		}
		switch us.FieldVerdict(f.Name) {
		case frames.FieldReject:
			return nil, streamErr(id, ErrCodeProtocol, "h2_underscore")
		case frames.FieldDrop:
			if err := validField(id, f); err != nil {
				return nil, err
			}
			continue
		}
		h.Fields = out
		if err := regular(id, h, f, true); err != nil {
			return nil, err
		}
		out = h.Fields
	}
	return out, nil
}
