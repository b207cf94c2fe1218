// Package h3 is the HTTP/3 codec (RFC 9114) and the QPACK header path as
// the gateway uses it (RFC 9204 with the dynamic table off): frame headers
// and typed frames with the parse / append / Len triple, stream types,
// settings, error codes, and field sections decoded into and encoded from
// the neutral frames.Head.
//
// It is a pure codec, used by the decode and encode stages: no sockets,
// goroutines, clocks, config or logs. It imports frames, frames/quic (for
// variable-length integers) and github.com/quic-go/qpack.
//
// Parsers take the bytes received so far and return how many they consumed;
// ErrShort means "need more input". Every other error is a *ConnError (close
// the connection with its code) or a *StreamError (reset that stream, or
// answer its Status when it is set), each with a unique counter token.
//
// QPACK: we advertise SETTINGS_QPACK_MAX_TABLE_CAPACITY 0 (the default), so
// a peer may not insert into our decoder's dynamic table, and every field
// section must have a Required Insert Count of 0 (RFC 9204 §4.5.1.1). A
// field section is decoded one line at a time against a size budget
// (RFC 9114 §4.2.2: name + value + 32 per field): a QPACK bomb, a small
// block that expands through static-table references and Huffman strings,
// stops at the cap instead of expanding in memory.
package h3
