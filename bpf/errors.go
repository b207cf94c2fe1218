package bpf

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/cilium/ebpf"
)

// Cause says why XDP cannot be used.
type Cause uint8

const (
	// CauseNoPrivilege: the process lacks CAP_BPF/CAP_NET_ADMIN (or
	// CAP_SYS_ADMIN on old kernels), or the memlock limit is too low.
	CauseNoPrivilege Cause = iota + 1
	// CauseKernelRefused: the kernel rejected the program or a map (verifier,
	// missing map type or helper, old kernel).
	CauseKernelRefused
	// CauseNoInterface: the interface does not exist.
	CauseNoInterface
	// CauseModeUnsupported: the driver cannot run XDP in the requested mode.
	CauseModeUnsupported
)

var causeNames = [...]string{
	CauseNoPrivilege:     "no privilege",
	CauseKernelRefused:   "kernel refused",
	CauseNoInterface:     "interface missing",
	CauseModeUnsupported: "mode unsupported",
}

func (c Cause) String() string {
	if int(c) < len(causeNames) && causeNames[c] != "" {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// UnavailableError says that XDP cannot be used here and why; the gateway
// answers it by running the userspace L4 path (unless native mode was
// demanded). Match it with errors.As.
type UnavailableError struct {
	Cause Cause
	Op    string // "load" or "attach <ifname> <mode>"
	Err   error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("bpf: xdp unavailable (%s): %s: %v", e.Cause, e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err says XDP cannot be used here.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// classify wraps a load or attach failure in an UnavailableError when it
// is one of the known reasons XDP cannot run; anything else is returned as
// is (it is our bug, not the host's).
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ve *ebpf.VerifierError
	switch {
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return &UnavailableError{Cause: CauseNoPrivilege, Op: op, Err: err}
	case errors.Is(err, syscall.ENODEV):
		return &UnavailableError{Cause: CauseNoInterface, Op: op, Err: err}
	case errors.As(err, &ve), errors.Is(err, ebpf.ErrNotSupported),
		errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.E2BIG),
		errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.ENOMEM):
		return &UnavailableError{Cause: CauseKernelRefused, Op: op, Err: err}
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOTSUP):
		return &UnavailableError{Cause: CauseModeUnsupported, Op: op, Err: err}
	}
	return err
}
