//go:build !unix

package tunnel

import (
	"net"
	"syscall"
)

// rawConnOf reports no raw socket: on this platform every read goes through
// net.Conn.Read.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func (d *direction) rawRead(uintptr) bool { return true }

func (d *direction) rawCopy(uintptr) bool { return true }
