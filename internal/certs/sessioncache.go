package certs

import (
	"container/list"
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
)

// SessionCache keeps TLS sessions on the server (ssl_session_cache) for stateful tickets: the ticket a client
// holds is only a random name of its session here, so no key that leaks later can decrypt past sessions (the
// reason ssl_session_tickets off is advised). Go's TLS has no session IDs; its WrapSession and UnwrapSession
// hooks carry these names instead. It holds at most a fixed number of sessions, the least recently used going
// first, each for its timeout.
type SessionCache struct {
	mu      sync.Mutex
	max     int
	bytes   int // the states' bytes, at most max × sessionBytes
	timeout time.Duration
	byName  map[[16]byte]*list.Element
	lru     list.List // of *session, most recently used at the front
}

type session struct {
	name    [16]byte
	server  string // the SNI name it was made under: it resumes under that name only
	state   []byte
	expires time.Time
}

// sessionBytes is what one session may hold on average (nginx's shared cache: about 256 bytes a session); a
// larger one (a client's long certificate chain) is not kept, so a client cannot fill memory with sessions.
const sessionBytes = 1 << 10

// NewSessionCache returns a cache of at most max sessions and max × 1 KiB of their state.
func NewSessionCache(max int) *SessionCache {
	return &SessionCache{max: max, timeout: 5 * time.Minute, byName: map[[16]byte]*list.Element{}}
}

// Max is how many sessions the cache holds at most.
func (c *SessionCache) Max() int { return c.max }

// SetTimeout sets how long sessions stored from now on stay (ssl_session_timeout); a reload may change it.
func (c *SessionCache) SetTimeout(d time.Duration) {
	c.mu.Lock()
	c.timeout = d
	c.mu.Unlock()
}

// Len is how many sessions are kept now.
func (c *SessionCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Use makes tc resume sessions from the cache: its tickets become names of sessions kept here.
func (c *SessionCache) Use(tc *tls.Config) {
	tc.SessionTicketsDisabled = false
	tc.WrapSession = c.wrap
	tc.UnwrapSession = c.unwrap
}

func (c *SessionCache) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	s := &session{server: cs.ServerName, state: state}
	rand.Read(s.name[:])
	if len(state) > 4*sessionBytes {
		return s.name[:], nil // named but not kept: the next handshake is a full one
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.expires = time.Now().Add(c.timeout)
	c.byName[s.name] = c.lru.PushFront(s)
	c.bytes += len(state)
	for c.lru.Len() > c.max || c.bytes > c.max*sessionBytes {
		c.remove(c.lru.Back())
	}
	return s.name[:], nil
}

func (c *SessionCache) remove(e *list.Element) {
	s := e.Value.(*session)
	c.lru.Remove(e)
	delete(c.byName, s.name)
	c.bytes -= len(s.state)
}

// unwrap finds the session a ticket names; an unknown or expired one, or one made under another SNI name
// (another server, perhaps with other client certificate rules), is a full handshake (nil, nil).
func (c *SessionCache) unwrap(ticket []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	if len(ticket) != 16 {
		return nil, nil
	}
	c.mu.Lock()
	e, ok := c.byName[[16]byte(ticket)]
	var state []byte
	if ok {
		s := e.Value.(*session)
		if time.Now().After(s.expires) {
			c.remove(e)
		} else if s.server == cs.ServerName {
			c.lru.MoveToFront(e)
			state = s.state
		}
	}
	c.mu.Unlock()
	if state == nil {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		return nil, nil
	}
	return ss, nil
}
