//go:build !linux

package tunnel

import "net"

// sockWriter is net.Conn.Write on platforms without raw socket writes.
type sockWriter struct{ net.Conn }

func newSockWriter(net.Conn) *sockWriter { return nil }
