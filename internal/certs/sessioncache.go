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
	timeout time.Duration
	byName  map[[16]byte]*list.Element
	lru     list.List // of *session, most recently used at the front
}

type session struct {
	name    [16]byte
	state   []byte
	expires time.Time
}

// NewSessionCache returns a cache of at most max sessions.
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

func (c *SessionCache) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	s := &session{state: state}
	rand.Read(s.name[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	s.expires = time.Now().Add(c.timeout)
	c.byName[s.name] = c.lru.PushFront(s)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.byName, old.Value.(*session).name)
	}
	return s.name[:], nil
}

// unwrap finds the session a ticket names; an unknown or expired one is a full handshake (nil, nil).
func (c *SessionCache) unwrap(ticket []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	if len(ticket) != 16 {
		return nil, nil
	}
	c.mu.Lock()
	e, ok := c.byName[[16]byte(ticket)]
	var state []byte
	if ok {
		s := e.Value.(*session)
		if time.Now().After(s.expires) {
			c.lru.Remove(e)
			delete(c.byName, s.name)
		} else {
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
