// Package conf is the gateway's TOML schema as Go structs, with defaults,
// validation, loading (the TOML file, then EG_ environment overrides, checked against
// the schema so that every problem is found at once) and
// the reload diff that says what can swap live and what needs a restart.
//
// The doc comment on each field is the source of docs/CONFIG.md. Validation
// reports every problem at once, each naming file and line (or the EG_
// variable), key and reason, so the
// binary never boots half-up (DESIGN §5). conf imports frames only.
package conf
