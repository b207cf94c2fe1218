package h1

import (
	"bytes"
	"strings"

	"github.com/expressgateway/expressgateway/frames"
)

// parseFieldLine splits one field line (RFC 9112 §5: field-name ":" OWS
// field-value OWS; CRLF already removed) into a lower-case name and a
// trimmed value. drop reports a name that the underscore policy drops.
func parseFieldLine(line string, us UnderscorePolicy) (name, value string, drop bool, err *Error) {
	if line[0] == ' ' || line[0] == '\t' {
		// RFC 9112 §5.2: a server that receives an obs-fold "MUST either
		// reject the message by sending a 400 (Bad Request) ... or replace
		// each received obs-fold with one or more SP octets"; we reject.
		return "", "", false, errObsFold
	}
	upper, under := false, false
	i := 0
	for ; i < len(line); i++ {
		switch nameClass[line[i]] {
		case nameOK:
			continue
		case nameUpper:
			upper = true
			continue
		case nameUnder:
			under = true
			continue
		}
		break
	}
	if i == len(line) {
		return "", "", false, errNoColon
	}
	switch c := line[i]; {
	case c == ':':
		if i == 0 {
			return "", "", false, errFieldName
		}
	case c == ' ' || c == '\t':
		// RFC 9112 §5.1: "A server MUST reject, with a response status code
		// of 400 (Bad Request), any received request message that contains
		// whitespace between a header field name and colon."
		return "", "", false, errWSColon
	case c == '\r':
		return "", "", false, errBareCR
	default:
		return "", "", false, errFieldName
	}
	name = line[:i]
	if under {
		switch us.FieldVerdict(name) {
		case frames.FieldReject:
			return "", "", false, errUnderscore
		case frames.FieldDrop:
			drop = true
		}
	}
	if upper {
		name = lowerName(name)
	}
	value = trimOWS(line[i+1:])
	for j := 0; j < len(value); j++ {
		if !valueOK[value[j]] {
			// RFC 9110 §5.5: "Field values containing CR, LF, or NUL
			// characters are invalid and dangerous"; RFC 9112 §2.2 lets a
			// recipient treat a bare CR as invalid, which we do.
			if value[j] == '\r' {
				return "", "", false, errBareCR
			}
			return "", "", false, errFieldValue
		}
	}
	return name, value, drop, nil
}

// fieldScan collects, during the one pass over the field lines, what the
// framing and connection logic needs.
type fieldScan struct {
	cl    int64 // declared Content-Length, -1 if none
	clIdx int   // index of the one content-length field kept, -1 if none

	teSeen        bool // a Transfer-Encoding field was present
	teCodings     int  // codings listed over all TE fields
	teChunked     int  // how many of them are "chunked"
	teLastChunked bool // the final coding is "chunked"

	hosts int    // Host field lines (requests)
	host  string // the first Host value

	connClose, connKeepAlive, connUpgrade bool
	upgrade                               string
	expect100                             bool
}

// parseFields parses the field lines of head from pos up to and including
// the empty line that ends it, appending to fs. The head was already
// checked by scanLines: every line ends in CRLF and the empty line exists.
// isRequest makes Host special (it moves to Authority). It returns the
// fields and the offset after the empty line.
func parseFields(head string, pos int, fs frames.Fields, sc *fieldScan, lim *Limits, isRequest bool) (frames.Fields, int, *Error) {
	sc.cl, sc.clIdx = -1, -1
	first := true
	for {
		lf := pos + strings.IndexByte(head[pos:], '\n')
		line := head[pos : lf-1]
		pos = lf + 1
		if line == "" {
			return fs, pos, nil
		}
		if first && isOWS(line[0]) {
			// RFC 9112 §2.2: "A recipient that receives whitespace between
			// the start-line and the first header field MUST either reject
			// the message as invalid or consume each whitespace-preceded
			// line without further processing of it."
			return nil, 0, errWSAfterLine
		}
		first = false
		name, value, drop, err := parseFieldLine(line, lim.Underscore)
		if err != nil {
			return nil, 0, err
		}
		if drop {
			continue
		}
		switch name {
		case "host":
			if isRequest {
				sc.hosts++
				if sc.hosts == 1 {
					sc.host = value
				}
				continue // Host becomes Head.Authority
			}
		case "content-length":
			keep, err := sc.contentLength(value, len(fs))
			if err != nil {
				return nil, 0, err
			}
			if keep == "" {
				continue // an identical duplicate, folded into the first
			}
			value = keep
		case "transfer-encoding":
			if err := sc.transferEncoding(value); err != nil {
				return nil, 0, err
			}
		case "connection":
			sc.connection(value)
		case "upgrade":
			if sc.upgrade == "" {
				sc.upgrade = value
			}
		case "expect":
			if equalFoldASCII(value, "100-continue") {
				sc.expect100 = true
			}
		}
		fs = append(fs, frames.Field{Name: name, Value: value})
	}
}

// contentLength checks one Content-Length field value, which may be a list
// ("5, 5"). It returns the value to keep for a first field, or "" for a
// duplicate that agrees with the first.
//
// RFC 9110 §8.6: a recipient of repeated identical values "MAY either
// reject the message as invalid or replace that invalid field value with a
// single instance of the decimal value"; we fold. Differing values or a
// non-digit leave the framing unknown: RFC 9112 §6.3 item 5: "the server
// MUST respond with a 400 (Bad Request) status code and then close the
// connection."
func (sc *fieldScan) contentLength(value string, idx int) (string, *Error) {
	first := ""
	for rest := value; ; {
		elem, more, found := strings.Cut(rest, ",")
		elem = trimOWS(elem)
		n, ok := frames.ParseContentLength(elem)
		if !ok {
			return "", errCL
		}
		if sc.cl >= 0 && n != sc.cl {
			return "", errCLConflict
		}
		sc.cl = n
		if first == "" {
			first = elem
		}
		if !found {
			break
		}
		rest = more
	}
	if sc.clIdx >= 0 {
		return "", nil
	}
	sc.clIdx = idx
	return first, nil
}

// transferEncoding records the codings of one Transfer-Encoding field
// (RFC 9112 §6.1: Transfer-Encoding = #transfer-coding, where
// transfer-coding = token *( OWS ";" OWS transfer-parameter )).
func (sc *fieldScan) transferEncoding(value string) *Error {
	sc.teSeen = true
	for rest := value; ; {
		elem, more, found := strings.Cut(rest, ",")
		elem = trimOWS(elem)
		if elem != "" { // RFC 9110 §5.6.1: empty list elements are ignored
			name, params, hasParams := strings.Cut(elem, ";")
			name = trimOWS(name)
			if !validToken(name) {
				return errTE
			}
			sc.teCodings++
			if equalFoldASCII(name, "chunked") {
				if hasParams {
					return errTE // chunked takes no parameters
				}
				sc.teChunked++
				sc.teLastChunked = true
			} else {
				if hasParams && !validParams(params) {
					return errTE
				}
				sc.teLastChunked = false
			}
		}
		if !found {
			return nil
		}
		rest = more
	}
}

// validParams checks transfer-parameters loosely: each is token BWS "="
// BWS ( token / quoted-string ), separated by ";". A quoted value may not
// hold ";" or "," here; no coding we forward has such parameters.
func validParams(s string) bool {
	for rest := s; ; {
		p, more, found := strings.Cut(rest, ";")
		k, v, ok := strings.Cut(p, "=")
		if !ok || !validToken(trimOWS(k)) {
			return false
		}
		v = trimOWS(v)
		if !validToken(v) && !(len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"') {
			return false
		}
		if !found {
			return true
		}
		rest = more
	}
}

// connection records the options of one Connection field.
func (sc *fieldScan) connection(value string) {
	for rest := value; ; {
		elem, more, found := strings.Cut(rest, ",")
		switch elem = trimOWS(elem); {
		case equalFoldASCII(elem, "close"):
			sc.connClose = true
		case equalFoldASCII(elem, "keep-alive"):
			sc.connKeepAlive = true
		case equalFoldASCII(elem, "upgrade"):
			sc.connUpgrade = true
		}
		if !found {
			return
		}
		rest = more
	}
}

// scanLines walks the lines of a head in b from pos, checking that each
// ends in CRLF, until the empty line. It returns the offset after that
// line and the number of non-empty lines seen, or ErrShort, or an
// *Error for a bare LF or a head past its caps. Lines past pos count
// against maxLines; bytes from 0 count against maxHead.
func scanLines(b []byte, pos, maxHead, maxLines int) (end, lines int, err error) {
	limit := min(len(b), maxHead)
	for {
		if pos >= limit {
			break
		}
		i := bytes.IndexByte(b[pos:limit], '\n')
		if i < 0 {
			break
		}
		lf := pos + i
		if lf == pos || b[lf-1] != '\r' {
			return 0, 0, errBareLF
		}
		if lf-1 == pos {
			return lf + 1, lines, nil
		}
		lines++
		if lines > maxLines {
			return 0, 0, ErrTooManyFields
		}
		pos = lf + 1
	}
	if len(b) >= maxHead {
		return 0, 0, ErrHeadTooLarge
	}
	return 0, 0, ErrShort
}
