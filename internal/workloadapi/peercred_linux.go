//go:build linux

package workloadapi

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCred returns the effective uid, gid and the pid of the process that
// connected conn, a Unix socket, as the kernel recorded them at connect
// (SO_PEERCRED, unix(7)).
func peerCred(conn net.Conn) (uid, gid uint32, pid int32, err error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, 0, 0, errors.New("workloadapi: peer credentials: not a Unix socket connection")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("workloadapi: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) //nolint:gosec // a file descriptor fits in an int
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("workloadapi: peer credentials: %w", err)
	}
	if credErr != nil {
		return 0, 0, 0, fmt.Errorf("workloadapi: peer credentials: %w", credErr)
	}
	return cred.Uid, cred.Gid, cred.Pid, nil
}
