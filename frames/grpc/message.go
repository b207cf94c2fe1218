package grpc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PrefixLen is the length of a message prefix: a compressed flag byte and
// a 4-byte big-endian message length.
const PrefixLen = 5

// ErrMessageFlag is the error of a compressed flag other than 0 or 1.
var ErrMessageFlag = errors.New("grpc: message compressed flag is not 0 or 1")

// TooLargeError is the error of a message whose prefix declares more
// bytes than the limit.
type TooLargeError struct{ Len, Max uint32 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("grpc: message of %d bytes over the %d-byte limit", e.Len, e.Max)
}

// Scanner follows the length-prefixed messages of one direction of a call
// across DATA chunks cut anywhere, reading only the prefixes: a message's
// bytes are skipped, never held, so a limit costs no buffer.
type Scanner struct {
	// Max caps a message's declared length (0: no cap).
	Max uint32

	prefix [PrefixLen]byte
	have   int    // prefix bytes seen of the current prefix
	left   uint32 // message bytes still to skip
	n      uint64 // messages whose prefix was read
}

// Feed takes the next chunk of the stream. It returns the first error
// (ErrMessageFlag or *TooLargeError) and keeps returning errors after one.
func (s *Scanner) Feed(b []byte) error {
	for len(b) > 0 {
		if s.left > 0 {
			k := min(uint64(s.left), uint64(len(b)))
			s.left -= uint32(k)
			b = b[k:]
			continue
		}
		k := copy(s.prefix[s.have:], b)
		s.have += k
		b = b[k:]
		if s.have < PrefixLen {
			return nil
		}
		if s.prefix[0] > 1 {
			return ErrMessageFlag
		}
		n := binary.BigEndian.Uint32(s.prefix[1:])
		if s.Max > 0 && n > s.Max {
			return &TooLargeError{Len: n, Max: s.Max}
		}
		s.have = 0
		s.left = n
		s.n++
	}
	return nil
}

// Messages returns how many message prefixes were read.
func (s *Scanner) Messages() uint64 { return s.n }

// Boundary reports whether the stream so far ends between messages: a
// stream that ends elsewhere was cut mid-message.
func (s *Scanner) Boundary() bool { return s.have == 0 && s.left == 0 }
