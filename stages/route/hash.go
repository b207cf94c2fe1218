package route

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/expressgateway/expressgateway/frames"
)

// hashKey says what the hashing pickers hash.
type hashKey struct {
	kind hashKind
	name string // header name (lowercase) or cookie name
}

type hashKind uint8

const (
	hashSourceIP hashKind = iota
	hashHeader
	hashCookie
	hashPath
)

func parseHashKey(s string) (hashKey, error) {
	switch {
	case s == "" || s == "source_ip":
		return hashKey{kind: hashSourceIP}, nil
	case s == "path":
		return hashKey{kind: hashPath}, nil
	case strings.HasPrefix(s, "header:") && len(s) > len("header:"):
		return hashKey{kind: hashHeader, name: strings.ToLower(s[len("header:"):])}, nil
	case strings.HasPrefix(s, "cookie:") && len(s) > len("cookie:"):
		return hashKey{kind: hashCookie, name: s[len("cookie:"):]}, nil
	}
	return hashKey{}, fmt.Errorf("%w %q", errHashKey, s)
}

// keyHash returns the hash of k's hash key. A request without the named
// header, cookie or path falls back to its source IP; without that too, to
// a random value (so such requests spread, as in Envoy).
func (p *Pool) keyHash(k *Key) uint64 {
	if k.Hash != 0 {
		return k.Hash
	}
	if k.Head != nil {
		switch p.hashKey.kind {
		case hashHeader:
			if v, ok := k.Head.Fields.Get(p.hashKey.name); ok {
				return hashString(v)
			}
		case hashCookie:
			if v, ok := cookieValue(k.Head, p.hashKey.name); ok {
				return hashString(v)
			}
		case hashPath:
			if k.Head.Path != "" {
				path, _, _ := strings.Cut(k.Head.Path, "?")
				return hashString(path)
			}
		}
	}
	if k.Src.IsValid() {
		return hashAddr(k)
	}
	return rand.Uint64()
}

// hashAddr hashes the 16-byte form of the source address (an IPv4 address
// and its IPv4-mapped IPv6 form hash alike).
func hashAddr(k *Key) uint64 {
	a := k.Src.As16()
	h := uint64(fnvOffset)
	for _, c := range a {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return mix64(h)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashString is FNV-1a 64 finished by mix64: stable across processes and
// restarts (so every gateway instance maps a key alike), allocation-free.
func hashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return mix64(h)
}

// mix64 is the splitmix64 finaliser: FNV's low bits are weak, this spreads
// every input bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// cookieValue finds cookie name in the request's cookie fields (an H2 or
// H3 request may carry several crumbs, RFC 9113 §8.2.3), allocation-free.
func cookieValue(h *frames.Head, name string) (string, bool) {
	if h == nil {
		return "", false
	}
	for i := range h.Fields {
		if h.Fields[i].Name != "cookie" {
			continue
		}
		v := h.Fields[i].Value
		for v != "" {
			var pair string
			pair, v, _ = strings.Cut(v, ";")
			pair = strings.TrimLeft(pair, " \t")
			n, val, ok := strings.Cut(pair, "=")
			if ok && n == name {
				return strings.Trim(strings.TrimRight(val, " \t"), `"`), true
			}
		}
	}
	return "", false
}

// backendID names a backend in a sticky cookie: a hash of pool, protocol
// and address, so the cookie does not reveal the address and stays valid
// across reloads and gateway instances.
func backendID(pool, proto, addr string) string {
	return strconv.FormatUint(hashString(pool+"\x00"+proto+"\x00"+addr), 36)
}

// randN returns a uniform random int in [0, n) from the runtime's
// per-thread generator (lock-free).
func randN(n int) int { return rand.IntN(n) }
