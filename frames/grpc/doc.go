// Package grpc is the part of the gRPC wire protocol (gRPC over HTTP/2,
// PROTOCOL-HTTP2.md) a proxy needs without decoding messages: which
// requests are gRPC calls, the grpc-timeout grammar, the 5-byte message
// prefix followed across DATA chunks, status codes and the HTTP-to-gRPC
// status mapping, and the trailers-only head a gateway answers with.
package grpc
