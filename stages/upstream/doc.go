// Package upstream is the upstream stage: connection pools per backend and
// protocol, writing a request's frames to a backend and reading its
// response back as frames, with connect, head and body timeouts. Errors are
// typed by retry safety (route.DialError: nothing reached the backend).
package upstream
