package tunnel

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller lets idle tunnel directions park: a direction that has seen no bytes for a moment hands back its
// buffer, registers its socket here and ends its goroutine; when the socket becomes readable (or the tunnel is
// aborted) a new goroutine picks the direction up again. An idle tunnel then holds neither goroutine nor copy
// buffer. One goroutine waits for all parked sockets (epoll, one-shot, level-triggered). Safe for concurrent use.
type Poller struct {
	epfd, wake int // epoll instance; eventfd that ends the wait loop on Close

	mu      sync.Mutex
	waiting map[uint64]*direction // token -> parked direction
	next    uint64
	closed  bool
}

// NewPoller starts a Poller. It returns nil when the platform has none: tunnels then keep a goroutine per
// direction.
func NewPoller() *Poller {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil
	}
	p := &Poller{epfd: epfd, wake: wake, waiting: map[uint64]*direction{}, next: 1}
	go p.loop()
	return p
}

// Close ends the wait loop and wakes every parked direction (each then finds its own state).
func (p *Poller) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	parked := p.waiting
	p.waiting = map[uint64]*direction{}
	p.mu.Unlock()
	unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	for _, d := range parked {
		d.resume()
	}
}

func (p *Poller) loop() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if token == 0 {
				// the eventfd: Close was called
				unix.Close(p.epfd)
				unix.Close(p.wake)
				return
			}
			p.mu.Lock()
			d := p.waiting[token]
			delete(p.waiting, token)
			p.mu.Unlock()
			if d != nil {
				d.resume()
			}
		}
	}
}

var errPollerClosed = errors.New("tunnel: poller closed")

// park registers d's socket for one readability event. It fails when the poller is closed, the socket is gone,
// or d was resumed meanwhile (then d must not wait: someone else runs it).
func (p *Poller) park(d *direction) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPollerClosed
	}
	if d.token == 0 {
		d.token = p.next
		p.next++
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(uint32(d.token)), Pad: int32(uint32(d.token >> 32))}
	var err error
	if d.registered {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, d.fd, &ev)
		if err == unix.ENOENT {
			err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, d.fd, &ev)
		}
	} else {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, d.fd, &ev)
		if err == unix.EEXIST {
			err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, d.fd, &ev)
		}
	}
	if err != nil {
		return err
	}
	d.registered = true
	if !d.parked.Load() {
		// resumed (aborted) between marking itself parked and registering: do not keep it
		return errPollerClosed
	}
	p.waiting[d.token] = d
	return nil
}

// forget drops d from the waiting set (it was resumed by someone other than the poller).
func (p *Poller) forget(d *direction) {
	p.mu.Lock()
	delete(p.waiting, d.token)
	p.mu.Unlock()
}

// socketFD returns the descriptor of the stream socket under c (unwrapping TLS and wrappers that expose
// NetConn), or -1. A direction parks only on a socket it can see.
func socketFD(c net.Conn) int {
	for range 8 {
		switch s := c.(type) {
		case *net.TCPConn:
			return fdOf(s)
		case *net.UnixConn:
			if !isUnixStream(s.LocalAddr()) && !isUnixStream(s.RemoteAddr()) {
				return -1
			}
			return fdOf(s)
		case interface{ NetConn() net.Conn }:
			c = s.NetConn()
		default:
			return -1
		}
	}
	return -1
}

func fdOf(c interface {
	SyscallConn() (syscall.RawConn, error)
}) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil {
		return -1
	}
	return fd
}
