package conf

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/CONFIG.md from the schema")

// TestConfigDoc_IsGeneratedFromTheSchema keeps docs/CONFIG.md equal to what
// the schema (struct fields, their doc comments and defaults) says, so docs
// never drift from code (the Rust ExpressGateway's §8 item 8). Run with -update after
// changing the schema.
func TestConfigDoc_IsGeneratedFromTheSchema(t *testing.T) {
	docs := fieldDocs(t)
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from `conf/*.go` by `go test ./conf -run ConfigDoc -update`; do not edit by hand.\n\n")
	b.WriteString("One TOML file; every key below, with its type, its default and whether `SIGHUP` applies it live\n")
	b.WriteString("(\"restart\" keys are logged and counted on reload, not applied). Live keys apply to new\n")
	b.WriteString("connections and new requests; those in flight finish under the old values. A listener is\n")
	b.WriteString("identified by its name: one added on reload is bound, one removed stops accepting and drains\n")
	b.WriteString("under its own drain budget, and a changed address or protocol is a remove plus an add.\n")
	b.WriteString("Unknown keys are errors.\n")
	b.WriteString("Environment overrides: `EG_SECTION__KEY=value` (double underscore nests, a number picks an\n")
	b.WriteString("element of an array of tables the file has), e.g. `EG_OBSERVABILITY__METRICS_BIND=127.0.0.1:9191`,\n")
	b.WriteString("`EG_LISTENERS__0__ADDRESS=0.0.0.0:8443`; the value is read as the key's type, and a problem with\n")
	b.WriteString("it names the variable. `expressgateway -check FILE` reports every problem at once (file:line,\n")
	b.WriteString("key, reason); `-check -bind` also tries every address.\n")
	def := Default()
	l := Listener{TLS: &ListenerTLS{}, QUIC: &QUIC{RawProxy: &RawProxy{}}, AltSvc: &AltSvc{}, WS: &WebSocket{}, GRPC: &GRPC{}}
	l.setDefaults()
	l.Name = "" // derived from protocol and address, as its doc says
	p := Pool{HealthCheck: &HealthCheck{}, Outlier: &Outlier{}, Retry: &Retry{}, Circuit: &Circuit{}, Sticky: &Sticky{}}
	p.setDefaults()
	be := Backend{}
	be.setDefaults()
	pt := Passthrough{}
	pt.PassthroughListener.setDefaults()
	pt.Name = "" // derived from bind_addr, as its doc says
	sections := []struct {
		title, path string
		v           any
	}{
		{"[[listeners]]", "listeners[]", l},
		{"[[listeners.routes]]", "listeners[].routes[]", Route{}},
		{"direct_response", "listeners[].routes[].direct_response", DirectResponse{ContentType: "text/plain; charset=utf-8"}},
		{"[[listeners.backends]], [[pools.backends]], [[listeners.routes.backends]]", "listeners[].backends[]", be},
		{"[[pools]]", "pools[]", p},
		{"[runtime]", "runtime", def.Runtime},
		{"[observability]", "observability", def.Observability},
		{"[admin]", "admin", def.Admin},
		{"[security]", "security", def.Security},
		{"[xdp]", "xdp", XDP{OverCap: DefaultXDPOverCap}},
		{"[[xdp.services]]", "xdp.services[]", XDPService{}},
		{"[passthrough], [[passthrough.listeners]]", "passthrough", pt},
		{"[[passthrough.quic_lb]]", "passthrough.quic_lb[]", QUICLB{}},
		{"servers of [[passthrough.quic_lb]]", "passthrough.quic_lb[].servers[]", QUICLBServer{}},
	}
	for _, s := range sections {
		fmt.Fprintf(&b, "\n## %s\n\n| key | type | default | reload | meaning |\n|---|---|---|---|---|\n", s.title)
		writeRows(&b, docs, reflect.ValueOf(s.v), s.path, "")
	}
	want := b.String()
	const path = "../docs/CONFIG.md"
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/CONFIG.md is stale: run go test ./conf -run ConfigDoc -update")
	}
}

func writeRows(b *strings.Builder, docs map[string]string, v reflect.Value, path, prefix string) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v = reflect.New(v.Type().Elem()).Elem()
		} else {
			v = v.Elem()
		}
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if f.Anonymous && tag == ",squash" {
			writeRows(b, docs, v.Field(i), path, prefix)
			continue
		}
		if tag == "" || tag == "-" {
			continue
		}
		fv := v.Field(i)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		key := prefix + tag
		full := path + "." + key
		if ft.Kind() == reflect.Struct {
			// Sub-tables documented inline with dotted keys.
			if tag == "routes" || tag == "backends" {
				continue
			}
			writeRows(b, docs, fv, path, key+".")
			continue
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			fmt.Fprintf(b, "| `%s` | array of tables | — | %s | %s |\n", key, reloadWord(full), prose(f.Name, docs[t.Name()+"."+f.Name]))
			continue
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", key, typeName(ft), defaultOf(fv), reloadWord(full), prose(f.Name, docs[t.Name()+"."+f.Name]))
	}
}

func reloadWord(path string) string {
	path = strings.ReplaceAll(path, "routes[].backends[]", "routes")
	if Reloads(path) {
		return "live"
	}
	return "restart"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64, reflect.Uint32:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Slice:
		return "array of " + typeName(t.Elem())
	}
	return t.Kind().String()
}

func defaultOf(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "—"
		}
		v = v.Elem()
	}
	if v.IsZero() {
		switch v.Kind() {
		case reflect.Bool:
			return "false"
		case reflect.Int, reflect.Int64, reflect.Uint32, reflect.Float64:
			return "`0`" // unset numbers are 0, which each key's text explains
		}
		return "—"
	}
	if v.Kind() == reflect.String {
		return fmt.Sprintf("`%q`", v.String())
	}
	return fmt.Sprintf("`%v`", v.Interface())
}

// prose is a field's doc comment for a reader of the config, not of the
// Go code: the Go field name it opens with goes ("CertPath is the PEM
// chain." → "the PEM chain."; "Name labels the listener" → "Labels the
// listener").
func prose(field, doc string) string {
	s := oneLine(doc)
	rest, ok := strings.CutPrefix(s, field+" ")
	if !ok {
		return s
	}
	for _, verb := range []string{"is ", "are "} {
		if r, ok := strings.CutPrefix(rest, verb); ok && r != "" {
			return r // "the PEM chain.", "tcp (L4 relay), …": as written
		}
	}
	if rest == "" {
		return s
	}
	return strings.ToUpper(rest[:1]) + rest[1:]
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", "\\|")
}

// fieldDocs reads the doc (or line) comment of every struct field in the
// package: "Struct.Field" → text.
func fieldDocs(t *testing.T) map[string]string {
	fset := token.NewFileSet()
	names, _ := filepath.Glob("*.go")
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out := map[string]string{}
	{
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				for _, fld := range st.Fields.List {
					text := fld.Doc.Text()
					if text == "" {
						text = fld.Comment.Text()
					}
					for _, name := range fld.Names {
						out[ts.Name.Name+"."+name.Name] = text
					}
				}
				return false
			})
		}
	}
	return out
}
