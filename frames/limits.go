package frames

// MaxDataChunk is the size of one pooled Data payload in bytes. Decoders
// split larger reads into several frames, so a frame never pins more than
// this much memory. 16 KiB matches the default HTTP/2 SETTINGS_MAX_FRAME_SIZE
// (RFC 9113 §6.5.2) and a TLS record.
const MaxDataChunk = 16 << 10

// MaxFieldCount is the default cap on header fields in one block; beyond it
// an H1 front answers 431 and H2/H3 reset the stream. It bounds the per-field
// work an attacker can cause with many tiny fields.
const MaxFieldCount = 256
