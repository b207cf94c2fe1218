package conf

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/go-viper/mapstructure/v2"
	"github.com/pelletier/go-toml/v2"
)

// Load reads path, applies EG_ environment overrides, fills defaults and
// validates. The error lists every problem (a *ProblemsError), each naming
// file and line (or the environment variable), key and reason.
func Load(path string) (*Config, error) {
	return load(path, os.Environ)
}

func load(path string, environ func() []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	ps := &Problems{file: path}
	raw := map[string]any{}
	if err := toml.Unmarshal(data, &raw); err != nil {
		var de *toml.DecodeError
		line, col := 0, 0
		if errors.As(err, &de) {
			line, col = de.Position()
		}
		ps.addAt(line, col, "TOML syntax: "+err.Error())
		return nil, ps.Err()
	}
	ps.lines = indexLines(data)
	ps.env = applyEnv(raw, environ(), ps)
	// Unknown keys and wrong types are found by our own walk, so that all
	// of them are reported together and in a user's words.
	checkTable(raw, reflect.TypeOf(Config{}), "", ps)
	if ps.Len() > 0 {
		return nil, ps.Err()
	}
	cfg := Default()
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{TagName: "koanf", Result: &cfg})
	if err != nil {
		return nil, fmt.Errorf("config decoder: %w", err)
	}
	if err := dec.Decode(raw); err != nil {
		// checkTable has vetted every type: this is a gap in that walk.
		ps.Addf("", "%v", err)
		return nil, ps.Err()
	}
	cfg.File = path
	cfg.setDefaults()
	cfg.validate(ps)
	if ps.Len() > 0 {
		return nil, ps.Err()
	}
	return &cfg, nil
}

func joinKey(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}
