package encode

import (
	"golang.org/x/net/http2"

	"github.com/expressgateway/expressgateway/frames/h2"
)

func http2Code(c h2.ErrCode) http2.ErrCode { return http2.ErrCode(c) }
