package h2

import (
	"math"

	"golang.org/x/net/http2"
)

// Settings are the SETTINGS parameters one side announces (RFC 9113 §6.5.2).
type Settings struct {
	HeaderTableSize      uint32
	EnablePush           bool
	MaxConcurrentStreams uint32 // math.MaxUint32: no limit announced
	InitialWindowSize    uint32
	MaxFrameSize         uint32
	MaxHeaderListSize    uint32 // math.MaxUint32: no limit announced
	// EnableConnectProtocol (RFC 8441 §3): the sender accepts extended
	// CONNECT (a :protocol pseudo-header) on its streams.
	EnableConnectProtocol bool
}

// DefaultSettings are the values in force before any SETTINGS frame
// (RFC 9113 §6.5.2).
func DefaultSettings() Settings {
	return Settings{
		HeaderTableSize:      DefaultHeaderTableSize,
		EnablePush:           true,
		MaxConcurrentStreams: math.MaxUint32,
		InitialWindowSize:    InitialWindowSize,
		MaxFrameSize:         DefaultMaxFrameSize,
		MaxHeaderListSize:    math.MaxUint32,
	}
}

// List returns the settings that differ from the protocol defaults, for
// WriteSettings.
func (s Settings) List() []http2.Setting {
	d := DefaultSettings()
	var out []http2.Setting
	if s.HeaderTableSize != d.HeaderTableSize {
		out = append(out, http2.Setting{ID: http2.SettingHeaderTableSize, Val: s.HeaderTableSize})
	}
	if !s.EnablePush {
		out = append(out, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	}
	if s.MaxConcurrentStreams != d.MaxConcurrentStreams {
		out = append(out, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: s.MaxConcurrentStreams})
	}
	if s.InitialWindowSize != d.InitialWindowSize {
		out = append(out, http2.Setting{ID: http2.SettingInitialWindowSize, Val: s.InitialWindowSize})
	}
	if s.MaxFrameSize != d.MaxFrameSize {
		out = append(out, http2.Setting{ID: http2.SettingMaxFrameSize, Val: s.MaxFrameSize})
	}
	if s.MaxHeaderListSize != d.MaxHeaderListSize {
		out = append(out, http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: s.MaxHeaderListSize})
	}
	if s.EnableConnectProtocol {
		out = append(out, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
	}
	return out
}

// apply validates and applies one received setting.
func (s *Settings) apply(st http2.Setting) error {
	if err := st.Valid(); err != nil {
		// RFC 9113 §6.5.2: INITIAL_WINDOW_SIZE above 2^31-1 "MUST be
		// treated as a connection error of type FLOW_CONTROL_ERROR"; a
		// bad ENABLE_PUSH or MAX_FRAME_SIZE is a PROTOCOL_ERROR.
		if st.ID == http2.SettingInitialWindowSize {
			return connErr(ErrCodeFlowControl, "h2_settings_window_too_large")
		}
		return connErr(ErrCodeProtocol, "h2_settings_invalid")
	}
	switch st.ID {
	case http2.SettingHeaderTableSize:
		s.HeaderTableSize = st.Val
	case http2.SettingEnablePush:
		s.EnablePush = st.Val == 1
	case http2.SettingMaxConcurrentStreams:
		s.MaxConcurrentStreams = st.Val
	case http2.SettingInitialWindowSize:
		s.InitialWindowSize = st.Val
	case http2.SettingMaxFrameSize:
		s.MaxFrameSize = st.Val
	case http2.SettingMaxHeaderListSize:
		s.MaxHeaderListSize = st.Val
	case http2.SettingEnableConnectProtocol:
		s.EnableConnectProtocol = st.Val == 1
	}
	// RFC 9113 §6.5.2: "An endpoint that receives a SETTINGS frame with
	// any unknown or unsupported identifier MUST ignore that setting."
	return nil
}
