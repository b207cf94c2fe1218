package decode

import (
	"context"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/ws"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/encode"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// awaitTunnelEnd keeps the idle timeout on a tunnel the client half-closed
// while the backend still sends.
func awaitTunnelEnd(ctx context.Context, t *encode.Tunnel, lim *ws.Limits) {
	if lim.IdleTimeout <= 0 {
		return
	}
	for {
		d := time.Until(t.LastActive().Add(lim.IdleTimeout))
		if d <= 0 {
			guard.WSIdleClosed.Inc()
			t.Close(&ws.CloseError{Code: ws.CloseGoingAway, Reason: "idle timeout"})
			return
		}
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-t.Done():
			tm.Stop()
			return
		case <-ctx.Done():
			tm.Stop()
			return
		}
	}
}

// tunnelDeadline is the read deadline of a tunnel's client side: the idle
// timeout from the last byte either way, or sooner the read-frame timeout
// of a frame the client has begun. Zero when neither applies.
func tunnelDeadline(t *encode.Tunnel, in *ws.Inspector, lim *ws.Limits) time.Time {
	var d time.Time
	if lim.IdleTimeout > 0 {
		d = t.LastActive().Add(lim.IdleTimeout)
	}
	if s := in.FrameStarted(); !s.IsZero() && lim.ReadFrameTimeout > 0 {
		if fd := s.Add(lim.ReadFrameTimeout); d.IsZero() || fd.Before(d) {
			d = fd
		}
	}
	return d
}

// tunnelExpired says which timeout, if any, has passed at now.
func tunnelExpired(t *encode.Tunnel, in *ws.Inspector, lim *ws.Limits, now time.Time) *ws.CloseError {
	if s := in.FrameStarted(); !s.IsZero() && lim.ReadFrameTimeout > 0 && !now.Before(s.Add(lim.ReadFrameTimeout)) {
		guard.WSSlowFrame.Inc()
		return &ws.CloseError{Code: ws.ClosePolicyViolation, Reason: "frame not completed in time"}
	}
	if lim.IdleTimeout > 0 && !now.Before(t.LastActive().Add(lim.IdleTimeout)) {
		guard.WSIdleClosed.Inc()
		return &ws.CloseError{Code: ws.CloseGoingAway, Reason: "idle timeout"}
	}
	return nil
}

// asClose is the Close a client framing error calls for: the Inspector's
// own (a limit), else 1002.
func asClose(err error) *ws.CloseError {
	if e, ok := err.(*ws.CloseError); ok {
		return e
	}
	return &ws.CloseError{Code: ws.CloseProtocolError, Reason: err.Error(), Rule: ws.RuleProtocol}
}

// closeTunnel ends a tunnel for e: the backend gets a Close with e's code
// (when the client's stream is between frames; else an abort), and the
// writer sends the client the same Close. Every front's tunnel ends here,
// so each rule is counted once.
func closeTunnel(ctx context.Context, log zerolog.Logger, info *stages.ConnInfo, st *stages.Stream, t *encode.Tunnel, boundary bool, e *ws.CloseError) {
	switch e.Rule {
	case ws.RuleProtocol:
		guard.WSProtocolError.Inc()
	case ws.RuleMessageSize:
		guard.WSMessageTooBig.Inc()
	case ws.RulePingRate:
		guard.WSPingFlood.Inc()
	}
	t.End.Close(e.Code)
	log.Debug().Str("listener", info.Listener).Str("remote", info.Remote.String()).Str("proto", info.Proto).
		Uint16("code", e.Code).Str("reason", e.Reason).Msg("websocket tunnel closed by the gateway")
	if boundary {
		if st.Req.Send(ctx, frames.CopyData(ws.AppendClose(nil, e.Code, e.Reason, true), true)) == nil {
			st.Req.Close(io.EOF)
		}
		t.Close(e)
		return
	}
	// The tunnel's cause is set before the backend is cut: the cut ends
	// the backend's side, which must not win as a 1011.
	t.Close(e)
	st.Req.Send(ctx, frames.ResetFrame(frames.CodeProtocol))
	st.Req.Close(&frames.ResetError{Code: frames.CodeProtocol})
}
