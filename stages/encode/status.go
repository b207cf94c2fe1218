package encode

import (
	"context"
	"errors"
	"net/http"
	"os"

	"github.com/expressgateway/expressgateway/frames"
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
