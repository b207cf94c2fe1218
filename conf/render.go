package conf

import (
	"fmt"
	"reflect"

	"github.com/pelletier/go-toml/v2"
)

// redactedKeys are keys whose values never leave the process in a
// rendered config: a digest of the admin token lets anyone who reads it
// mount an offline guess at the token.
var redactedKeys = map[string]bool{"api_token_hash": true}

// Redacted is what a redacted value renders as.
const Redacted = "<redacted>"

// Render returns cfg as TOML, every key under its file name, with the
// defaults the loader applied and secrets redacted: what the admin
// /config endpoint serves, so that an operator sees the config the
// process runs, not the file it was started with.
func Render(cfg *Config) ([]byte, error) {
	m, _ := renderValue(reflect.ValueOf(cfg)).(map[string]any)
	b, err := toml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return b, nil
}

// renderValue turns v into what TOML writes: a struct becomes a table of
// its koanf-tagged fields, an unset pointer is left out (nil).
func renderValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		renderFields(v, m)
		return m
	case reflect.Slice:
		out := make([]any, 0, v.Len())
		for i := range v.Len() {
			if e := renderValue(v.Index(i)); e != nil {
				out = append(out, e)
			}
		}
		return out
	default:
		return v.Interface()
	}
}

func renderFields(v reflect.Value, m map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		switch {
		case f.Anonymous && tag == ",squash":
			renderFields(v.Field(i), m)
		case tag == "" || tag == "-" || !f.IsExported():
		case redactedKeys[tag]:
			if !v.Field(i).IsZero() {
				m[tag] = Redacted
			}
		default:
			if e := renderValue(v.Field(i)); e != nil {
				m[tag] = e
			}
		}
	}
}
