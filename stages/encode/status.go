package encode

import (
	"context"
	"errors"
	"net/http"
	"os"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/grpc"
)

// StatusText is the reason phrase of a status, used for local responses.
func StatusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Status " + itoa3(status)
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}

// LocalResponse is the gateway's own answer with status, the one builder
// every front uses: a short text body (none for HEAD), or, for a gRPC
// call, the trailers-only response the gRPC status mapping gives, so a
// gRPC client reads a status rather than an HTTP error it would call
// UNKNOWN. The head ends the response when the body is empty.
func LocalResponse(status int, method string, grpcCall bool) (*frames.Head, string) {
	if grpcCall {
		return grpc.TrailersOnly(grpc.Local(status), "expressgateway: "+itoa3(status)+" "+StatusText(status)), ""
	}
	text := StatusText(status) + "\n"
	h := &frames.Head{Status: status, ContentLength: int64(len(text))}
	h.Fields = append(h.Fields, frames.Field{Name: "content-type", Value: "text/plain; charset=utf-8"})
	if method == "HEAD" {
		return h, ""
	}
	return h, text
}

// StatusForCode maps a neutral reset cause to the status a client gets when
// no response head has gone out yet.
func StatusForCode(c frames.ErrCode) int {
	switch c {
	case frames.CodeTimeout:
		return http.StatusGatewayTimeout
	case frames.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case frames.CodeRefused:
		return http.StatusServiceUnavailable
	case frames.CodeProtocol:
		return http.StatusBadRequest
	case frames.CodeCalm:
		return http.StatusTooManyRequests
	case frames.CodeInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadGateway
}

func statusForCause(err error) int {
	var re *frames.ResetError
	switch {
	case errors.As(err, &re):
		return StatusForCode(re.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}
