package conf

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// This file checks a parsed file against the schema (the Config struct and
// its koanf tags) before decoding: every unknown key and every value of the
// wrong type is a problem, all reported together, in words a user reads.

// notYet are reference keys whose feature is not built yet: they get a
// precise answer instead of "unknown key". Keyed by the docs form of the
// path (list indexes dropped).
var notYet = map[string]string{}

var listIndex = regexp.MustCompile(`\[\d+\]`)

// docsPath drops list indexes: listeners[0].tls → listeners[].tls.
func docsPath(p string) string { return listIndex.ReplaceAllString(p, "[]") }

// checkTable reports every key of raw that t (a config struct) has no field
// for, and every value whose type the field cannot take.
func checkTable(raw map[string]any, t reflect.Type, path string, ps *Problems) {
	t = deref(t)
	fields := tagFields(t)
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := joinKey(path, name)
		ft, ok := fields[name]
		if !ok {
			ps.Addf(p, "%s", unknownKey(t, name, p))
			continue
		}
		checkValue(raw[name], ft, p, ps)
	}
}

func checkValue(v any, t reflect.Type, p string, ps *Problems) {
	t = deref(t)
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			ps.Addf(p, "want %s, got %s", wantType(t), describe(v))
			return
		}
		checkTable(m, t, p, ps)
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			ps.Addf(p, "want %s, got %s", wantType(t), describe(v))
			return
		}
		for i, e := range arr {
			checkValue(e, t.Elem(), idx(p, i), ps)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			ps.Addf(p, "want a string, got %s", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			ps.Addf(p, "want true or false, got %s", describe(v))
		}
	case reflect.Float64:
		// TOML types 1 as an integer and 0.5 as a float: both are numbers.
		switch v.(type) {
		case int64, float64:
		default:
			ps.Addf(p, "want a number, got %s", describe(v))
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32, reflect.Uint16, reflect.Uint64:
		n, ok := v.(int64)
		if !ok {
			ps.Addf(p, "want an integer, got %s", describe(v))
			return
		}
		if overflows(t, n) {
			ps.Addf(p, "%d does not fit %s", n, t.Kind())
		}
	default:
		ps.Addf(p, "cannot be set from a file (internal type %s)", t)
	}
}

func overflows(t reflect.Type, n int64) bool {
	switch t.Kind() {
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return n < 0 || reflect.Zero(t).OverflowUint(uint64(n))
	}
	return reflect.Zero(t).OverflowInt(n)
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// tagFields maps a struct's koanf tags to field types; an embedded
// struct tagged ",squash" lends its fields to the table.
func tagFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := f.Tag.Get("koanf"); f.Anonymous && tag == ",squash" {
			for k, v := range tagFields(f.Type) {
				out[k] = v
			}
		} else if tag != "" && tag != "-" {
			out[tag] = f.Type
		}
	}
	return out
}

// wantType names what a field takes, as a user writes it.
func wantType(t reflect.Type) string {
	t = deref(t)
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct:
		return "a table"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		e := deref(t.Elem())
		switch e.Kind() {
		case reflect.Struct:
			return "an array of tables"
		case reflect.String:
			return "an array of strings"
		default:
			return "an array of integers"
		}
	}
	return "an integer"
}

// describe names a decoded TOML value: the string "2", the integer 5.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	case time.Time, interface{ String() string }:
		return "a date/time"
	}
	return fmt.Sprintf("a %T", v)
}

// unknownKey explains an unknown key: a feature not built yet, a near
// miss among its siblings, or a key that belongs in another table.
func unknownKey(t reflect.Type, name, p string) string {
	if why, ok := notYet[docsPath(p)]; ok {
		return why
	}
	siblings := make([]string, 0, t.NumField())
	for tag := range tagFields(t) {
		siblings = append(siblings, tag)
	}
	if s := closest(name, siblings); s != "" {
		return fmt.Sprintf("unknown key (did you mean %s?)", s)
	}
	var homes []string
	schemaPaths(reflect.TypeOf(Config{}), "", func(table, field string) {
		if field == name {
			homes = append(homes, tableName(table))
		}
	})
	slices.Sort(homes)
	homes = slices.Compact(homes)
	if len(homes) > 0 {
		return fmt.Sprintf("unknown key here (%s is a key of %s)", name, strings.Join(homes, ", "))
	}
	return "unknown key"
}

// schemaPaths calls fn for every field of t with its table's docs path.
func schemaPaths(t reflect.Type, table string, fn func(table, field string)) {
	t = deref(t)
	for tag, ft := range tagFields(t) {
		fn(table, tag)
		ft = deref(ft)
		switch {
		case ft.Kind() == reflect.Struct:
			schemaPaths(ft, joinKey(table, tag), fn)
		case ft.Kind() == reflect.Slice && deref(ft.Elem()).Kind() == reflect.Struct:
			schemaPaths(ft.Elem(), joinKey(table, tag)+"[]", fn)
		}
	}
}

// tableName renders a docs path as its TOML header: listeners[].http →
// [listeners.http], listeners[] → [[listeners]].
func tableName(docs string) string {
	if docs == "" {
		return "the top level"
	}
	plain := strings.ReplaceAll(docs, "[]", "")
	if strings.HasSuffix(docs, "[]") {
		return "[[" + plain + "]]"
	}
	return "[" + plain + "]"
}

// closest returns the candidate nearest to name when it is near enough to
// be a typo, or "".
func closest(name string, candidates []string) string {
	best, bestD := "", len(name)
	slices.Sort(candidates)
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= 2 || bestD*3 <= len(name) {
		return best
	}
	// A shortened name: every word of it in one candidate, in order
	// (per_ip_cap → per_ip_connection_cap).
	for _, c := range candidates {
		if wordsIn(strings.Split(name, "_"), strings.Split(c, "_")) {
			return c
		}
	}
	return ""
}

func wordsIn(words, in []string) bool {
	if len(words) < 2 {
		return false
	}
	i := 0
	for _, w := range in {
		if i < len(words) && w == words[i] {
			i++
		}
	}
	return i == len(words)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
