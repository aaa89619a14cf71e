//go:build !linux

package tunnel

import (
	"errors"
	"net"
)

// Poller parks idle tunnel directions where the platform allows it; here it does not, and NewPoller returns
// nil: tunnels keep a goroutine per direction.
type Poller struct{}

// NewPoller returns nil on this platform.
func NewPoller() *Poller { return nil }

// Close does nothing.
func (p *Poller) Close() {}

func (p *Poller) park(*direction) error { return errors.New("tunnel: no poller on this platform") }

func (p *Poller) forget(*direction) {}

func socketFD(net.Conn) int { return -1 }
