package conf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment override. A double underscore nests:
// EG_OBSERVABILITY__METRICS_BIND sets observability.metrics_bind. Variables
// without a double underscore (EG_LOG_LEVEL, EG_LOG_FORMAT) are not config
// keys and are left alone.
const EnvPrefix = "EG_"

// Load reads path, applies EG_ environment overrides, fills defaults and
// validates. The error lists every problem, each naming file, key and reason.
func Load(path string) (*Config, error) {
	return load(path, os.Environ)
}

func load(path string, environ func() []string) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), toml.Parser()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	envProvider := env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		EnvironFunc:   environ,
		TransformFunc: envKey,
	})
	if err := k.Load(envProvider, nil); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	cfg := Default()
	cfg.File = path
	ps := &Problems{file: path}
	// An unknown key is an error, never ignored; found by our own walk so
	// that unknown keys and wrong types are reported together.
	unknownKeys(k.Raw(), reflect.TypeOf(cfg), "", ps)
	dec := &mapstructure.DecoderConfig{TagName: "koanf", Result: &cfg}
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: dec}); err != nil {
		decodeProblems(err, ps)
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// envKey maps EG_A__B_C=v to a.b_c and types v the way TOML would.
func envKey(k, v string) (string, any) {
	k = strings.TrimPrefix(k, EnvPrefix)
	if !strings.Contains(k, "__") {
		return "", nil
	}
	return strings.ToLower(strings.ReplaceAll(k, "__", ".")), envValue(v)
}

func envValue(v string) any {
	if i, err := strconv.ParseInt(v, 10, 64); err == nil {
		return i
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		var out []any
		for _, s := range strings.Split(strings.Trim(v, "[]"), ",") {
			if s = strings.Trim(strings.TrimSpace(s), `"`); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return v
}

// decodeProblems turns mapstructure's joined errors into Problems with key
// paths, so wrong types and unknown keys read like every other problem.
func decodeProblems(err error, ps *Problems) {
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		var de *mapstructure.DecodeError
		if errors.As(e, &de) {
			name := de.Name()
			inner := de.Unwrap()
			// Nested decode errors carry the deepest name.
			var deeper *mapstructure.DecodeError
			for errors.As(inner, &deeper) {
				name, inner = deeper.Name(), deeper.Unwrap()
			}
			if j, ok := inner.(interface{ Unwrap() []error }); ok {
				for _, c := range j.Unwrap() {
					walk(c)
				}
				return
			}
			ps.Addf(name, "%s", inner.Error())
			return
		}
		ps.Addf("(file)", "%v", e)
	}
	walk(err)
}

// unknownKeys reports every key of raw that t (a config struct) has no
// koanf-tagged field for, descending into tables and arrays of tables.
func unknownKeys(raw map[string]any, t reflect.Type, path string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := f.Tag.Get("koanf"); tag != "" && tag != "-" {
			fields[tag] = f.Type
		}
	}
	for name, v := range raw {
		p := joinKey(path, name)
		ft, ok := fields[name]
		if !ok {
			ps.Addf(p, "unknown key")
			continue
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch v := v.(type) {
		case map[string]any:
			if ft.Kind() == reflect.Struct {
				unknownKeys(v, ft, p, ps)
			}
		case []any:
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				for i, e := range v {
					if m, ok := e.(map[string]any); ok {
						unknownKeys(m, ft.Elem(), fmt.Sprintf("%s[%d]", p, i), ps)
					}
				}
			}
		case []map[string]any:
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				for i, m := range v {
					unknownKeys(m, ft.Elem(), fmt.Sprintf("%s[%d]", p, i), ps)
				}
			}
		}
	}
}

func joinKey(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}
