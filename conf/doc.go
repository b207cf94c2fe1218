// Package conf is the gateway's TOML schema as Go structs, with defaults,
// validation, loading (the TOML file, then EG_ environment overrides, both
// checked against the schema so that every problem is found at once) and
// the reload diff that says what can swap live and what needs a restart.
//
// The doc comment on each field is the source of docs/CONFIG.md. Loading
// reports every problem at once, each naming file and line (or the EG_
// variable), key and reason, so the binary never boots half-up. Of the
// gateway's own packages, conf imports frames only.
package conf
