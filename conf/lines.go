package conf

import (
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// lineIndex maps every key path of a parsed file (listeners[0].http,
// listeners[0].http.body_timeout_ms, listeners[0].backends[1]) to the line
// it is written on, so a problem names its line as well as its key.
type lineIndex map[string]int

// find returns the line of key, or of the nearest enclosing table written
// in the file; 0 when none is (a key set by default or left out).
func (ix lineIndex) find(k string) int {
	for k != "" {
		if n, ok := ix[k]; ok {
			return n
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			return 0
		}
		k = k[:i]
	}
	return 0
}

// indexLines walks the TOML document data (already known to parse) and
// records where each key path is written. Array-of-tables headers count
// their elements per parent element, as the decoder does.
func indexLines(data []byte) lineIndex {
	ix := lineIndex{}
	counts := map[string]int{} // array-of-tables path → elements so far
	var p unstable.Parser
	p.Reset(data)
	line := func(n *unstable.Node) int {
		if n == nil || n.Raw.Length == 0 {
			return 0
		}
		return p.Shape(n.Raw).Start.Line
	}
	// resolve turns header keys into a path, entering the last element of
	// each array of tables on the way.
	resolve := func(keys []string) string {
		path := ""
		for _, k := range keys {
			path = joinKey(path, k)
			if n, ok := counts[path]; ok {
				path = idx(path, n-1)
			}
		}
		return path
	}
	record := func(path string, n int) {
		if _, ok := ix[path]; !ok && n > 0 {
			ix[path] = n
		}
	}
	var value func(prefix string, v *unstable.Node, at int)
	keyValue := func(prefix string, kv *unstable.Node) {
		path, at := prefix, 0
		it := kv.Key()
		for it.Next() {
			path = joinKey(path, string(it.Node().Data))
			if at == 0 {
				at = line(it.Node())
			}
			record(path, at)
		}
		value(path, kv.Value(), at)
	}
	value = func(prefix string, v *unstable.Node, at int) {
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				keyValue(prefix, it.Node())
			}
		case unstable.Array:
			it := v.Children()
			for i := 0; it.Next(); i++ {
				el := it.Node()
				n := line(el)
				if n == 0 {
					n = at
				}
				record(idx(prefix, i), n)
				value(idx(prefix, i), el, n)
			}
		}
	}
	current := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			keyValue(current, e)
		case unstable.Table, unstable.ArrayTable:
			var keys []string
			at := 0
			it := e.Key()
			for it.Next() {
				keys = append(keys, string(it.Node().Data))
				if at == 0 {
					at = line(it.Node())
				}
			}
			if e.Kind == unstable.Table {
				current = resolve(keys)
			} else {
				parent := resolve(keys[:len(keys)-1])
				arr := joinKey(parent, keys[len(keys)-1])
				counts[arr]++
				current = idx(arr, counts[arr]-1)
				record(arr, at)
			}
			record(current, at)
		}
	}
	return ix
}
