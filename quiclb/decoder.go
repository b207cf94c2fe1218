package quiclb

import "fmt"

// Decoder reads server IDs out of Connection IDs under up to 7 configs
// side by side (config rotation, draft §3.1), picked by a Connection ID's
// top 3 bits. It is immutable and safe for concurrent use.
type Decoder struct {
	codecs [MaxConfigs]*Codec
}

// NewDecoder builds a decoder for configs, whose IDs must differ.
func NewDecoder(configs []Config) (*Decoder, error) {
	d := &Decoder{}
	for _, c := range configs {
		k, err := NewCodec(c)
		if err != nil {
			return nil, err
		}
		if d.codecs[c.ID] != nil {
			return nil, fmt.Errorf("quiclb: config id %d given twice", c.ID)
		}
		d.codecs[c.ID] = k
	}
	return d, nil
}

// Unroutable says why a Connection ID has no server ID.
type Unroutable uint8

// The reasons a Connection ID is unroutable (draft §4.1). Routable is not
// one: it is the zero value of a successful decode.
const (
	Routable      Unroutable = iota
	Empty                    // a zero-length Connection ID
	Reserved                 // config codepoint 0b111
	UnknownConfig            // no config has the codepoint
	TooShort                 // shorter than its config's length
)

var unroutableNames = [...]string{Routable: "routable", Empty: "empty", Reserved: "reserved_config", UnknownConfig: "unknown_config", TooShort: "too_short"}

func (u Unroutable) String() string {
	if int(u) < len(unroutableNames) {
		return unroutableNames[u]
	}
	return "invalid"
}

// ConfigOf returns the codec that cid's first octet selects, or nil.
func (d *Decoder) ConfigOf(first byte) *Codec {
	id := first >> 5
	if id >= MaxConfigs {
		return nil
	}
	return d.codecs[id]
}

// Decode returns cid's config ID and server ID, or why it has none.
func (d *Decoder) Decode(cid []byte) (uint8, ServerID, Unroutable) {
	if len(cid) == 0 {
		return 0, ServerID{}, Empty
	}
	id := cid[0] >> 5
	if id == UnroutableConfig {
		return id, ServerID{}, Reserved
	}
	k := d.codecs[id]
	if k == nil {
		return id, ServerID{}, UnknownConfig
	}
	s, err := k.ServerID(cid)
	if err != nil {
		return id, ServerID{}, TooShort
	}
	return id, s, Routable
}
