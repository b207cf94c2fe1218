// Package translate is the protocol-neutral rewrite between a front and a
// backend: hop-by-hop fields out, forwarding fields in, Via,
// Alt-Svc. One ordered function per direction. Pure: no I/O.
package translate
