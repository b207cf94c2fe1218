package conf

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment override. A double underscore nests
// (EG_OBSERVABILITY__METRICS_BIND sets observability.metrics_bind) and a
// number picks an element of an array of tables the file has
// (EG_LISTENERS__0__ADDRESS). Variables without a double underscore
// (EG_LOG_LEVEL, EG_LOG_FORMAT, EG_CPUPROFILE) are not config keys and are
// left alone.
const EnvPrefix = "EG_"

// applyEnv sets every EG_ override of environ into raw (the parsed file),
// each value read as the type of its key. A variable that names no key, an
// element the file lacks or a value of the wrong type is a problem named
// by the variable. It returns the key paths set, to the variable.
func applyEnv(raw map[string]any, environ []string, ps *Problems) map[string]string {
	set := map[string]string{}
	sort.Strings(environ)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || !strings.Contains(name, "__") {
			continue
		}
		segs := strings.Split(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__")
		if p, ok := setEnv(raw, reflect.TypeOf(Config{}), segs, "", name, value, ps); ok {
			set[p] = name
		}
	}
	return set
}

// setEnv walks segs down t and m and sets the leaf.
func setEnv(m map[string]any, t reflect.Type, segs []string, path, name, value string, ps *Problems) (string, bool) {
	t = deref(t)
	seg := segs[0]
	p := joinKey(path, seg)
	ft, ok := tagFields(t)[seg]
	if !ok {
		ps.addEnv(name, p, "%s", unknownKey(t, seg, p))
		return "", false
	}
	ft = deref(ft)
	rest := segs[1:]
	if len(rest) == 0 {
		if ft.Kind() == reflect.Struct || ft.Kind() == reflect.Slice && deref(ft.Elem()).Kind() == reflect.Struct {
			ps.addEnv(name, p, "is a table: override one of its keys (%s__KEY)", name)
			return "", false
		}
		v, ok := envValue(value, ft)
		if !ok {
			ps.addEnv(name, p, "want %s, got %q", wantType(ft), value)
			return "", false
		}
		m[seg] = v
		return p, true
	}
	switch {
	case ft.Kind() == reflect.Struct:
		child, ok := m[seg].(map[string]any)
		if !ok {
			if _, present := m[seg]; present {
				return "", false // the file's type problem is reported by checkTable
			}
			child = map[string]any{}
			m[seg] = child
		}
		return setEnv(child, ft, rest, p, name, value, ps)
	case ft.Kind() == reflect.Slice && deref(ft.Elem()).Kind() == reflect.Struct:
		arr, _ := m[seg].([]any)
		i, err := strconv.Atoi(rest[0])
		if err != nil || i < 0 {
			ps.addEnv(name, p, "%q is not an index: an override names an element of an array of tables by number (%s__0__KEY)", rest[0], strings.TrimSuffix(name, "__"+strings.Join(rest, "__")))
			return "", false
		}
		if i >= len(arr) {
			ps.addEnv(name, idx(p, i), "the file has %d %s entries: an override can change an existing entry, not add one", len(arr), tableName(docsPath(p)+"[]"))
			return "", false
		}
		el, ok := arr[i].(map[string]any)
		if !ok || len(rest) < 2 {
			ps.addEnv(name, idx(p, i), "is a table: override one of its keys")
			return "", false
		}
		return setEnv(el, ft.Elem(), rest[1:], idx(p, i), name, value, ps)
	}
	ps.addEnv(name, p, "is not a table, so %s has no key %s", p, strings.Join(rest, "."))
	return "", false
}

// envValue reads an environment value as the type t, the way TOML would
// have typed it: an integer, a number, true/false, a string, or a comma-separated
// list ("[a, b]" or "a,b").
func envValue(v string, t reflect.Type) (any, bool) {
	switch t.Kind() {
	case reflect.String:
		return v, true
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	case reflect.Float64:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	case reflect.Slice:
		out := []any{}
		for _, s := range strings.Split(strings.Trim(strings.TrimSpace(v), "[]"), ",") {
			s = strings.Trim(strings.TrimSpace(s), `"`)
			if s == "" {
				continue
			}
			e, ok := envValue(s, deref(t.Elem()))
			if !ok {
				return nil, false
			}
			out = append(out, e)
		}
		return out, true
	default:
		n, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 64)
		return n, err == nil
	}
}
