// Package translate is the protocol-neutral rewrite between a front and a
// backend (DESIGN §3): hop-by-hop fields out, forwarding fields in, Via,
// Alt-Svc. One ordered function per direction (STYLE §7.12). Pure: no I/O.
package translate
