// Package conf is the gateway's TOML schema as Go structs, with defaults,
// validation, loading (koanf: the file, then EG_ environment overrides) and
// the reload diff that says what can swap live and what needs a restart.
//
// The doc comment on each field is the source of docs/CONFIG.md. Validation
// reports every problem at once, each naming file, key and reason, so the
// binary never boots half-up (DESIGN §5). conf imports frames only.
package conf
