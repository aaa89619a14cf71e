//go:build !linux

package tunnel

import "net"

// enableInq reports that the platform cannot tell how many bytes a read left queued.
func enableInq(net.Conn) bool { return false }

func recvInq(int, []byte) (int, int, error) { panic("tunnel: recvInq without TCP_INQ") }
