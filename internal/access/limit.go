package access

import (
	"sync"
	"time"
)

// ReqZone is a limit_req_zone: nginx's leaky bucket per key. Each key's excess (in thousandths of a request)
// drains at the zone's rate; a request that would push it over the burst is refused.
type ReqZone struct {
	Name string
	Size int64

	mu     sync.Mutex
	rate   int64 // requests per second × 1000
	states map[string]*reqState
	max    int
	swept  time.Time
}

type reqState struct {
	excess int64 // thousandths of a request
	last   time.Time
}

// reqStateBytes is what one key costs in nginx's zone (its documentation: 1m keeps about 16000 states).
const reqStateBytes = 64

// NewReqZone returns a zone of size bytes limiting each key to rate requests per second.
func NewReqZone(name string, size int64, rate float64) *ReqZone {
	z := &ReqZone{Name: name, Size: size, states: map[string]*reqState{}}
	z.SetRate(rate)
	z.max = int(size / reqStateBytes)
	if z.max < 1 {
		z.max = 1
	}
	return z
}

// SetRate changes the rate (a reload that keeps the zone's name and size keeps its state).
func (z *ReqZone) SetRate(rate float64) {
	z.mu.Lock()
	z.rate = int64(rate * 1000)
	if z.rate < 1 {
		z.rate = 1
	}
	z.mu.Unlock()
}

// Verdict is the outcome of a limit_req check.
type Verdict int

const (
	Pass     Verdict = iota // within the rate
	Delay                   // within the burst: serve after the returned delay
	Reject                  // over the burst
	ZoneFull                // no room for a new key
)

// Take accounts one request for key at now with the given burst and delay threshold (nodelay: delay = burst)
// and returns the verdict, the wait before serving and the excess (in requests) for the log.
func (z *ReqZone) Take(key string, now time.Time, burst, delay int) (Verdict, time.Duration, float64) {
	z.mu.Lock()
	defer z.mu.Unlock()
	st, ok := z.states[key]
	if !ok {
		if len(z.states) >= z.max {
			z.sweep(now)
			if len(z.states) >= z.max {
				return ZoneFull, 0, 0
			}
		}
		z.states[key] = &reqState{last: now} // a new key starts with an empty bucket (nginx: excess 0)
		return Pass, 0, 0
	}
	ms := now.Sub(st.last).Milliseconds()
	if ms < 0 {
		ms = 0
	}
	excess := st.excess - z.rate*ms/1000 + 1000
	if excess < 0 {
		excess = 0
	}
	if excess > int64(burst)*1000 {
		return Reject, 0, float64(excess) / 1000
	}
	st.excess, st.last = excess, now
	if excess <= int64(delay)*1000 {
		return Pass, 0, float64(excess) / 1000
	}
	wait := time.Duration((excess-int64(delay)*1000)*1000/z.rate) * time.Millisecond
	return Delay, wait, float64(excess) / 1000
}

// sweep drops keys whose bucket has drained (they carry no state worth keeping), at most once a second.
func (z *ReqZone) sweep(now time.Time) {
	if now.Sub(z.swept) < time.Second {
		return
	}
	z.swept = now
	for k, st := range z.states {
		if st.excess-z.rate*now.Sub(st.last).Milliseconds()/1000 <= 0 {
			delete(z.states, k)
		}
	}
}

// ConnZone is a limit_conn_zone: the number of requests (and open WebSocket tunnels) in progress per key.
type ConnZone struct {
	Name string
	Size int64

	mu     sync.Mutex
	counts map[string]int
	max    int
}

// connStateBytes is what one key costs in nginx's zone (1m keeps about 32000 states).
const connStateBytes = 32

// NewConnZone returns a zone of size bytes.
func NewConnZone(name string, size int64) *ConnZone {
	z := &ConnZone{Name: name, Size: size, counts: map[string]int{}, max: int(size / connStateBytes)}
	if z.max < 1 {
		z.max = 1
	}
	return z
}

// Acquire counts one more connection for key unless it already has limit; release undoes it (call it once).
func (z *ConnZone) Acquire(key string, limit int) (release func(), ok bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	n, exists := z.counts[key]
	if n >= limit || (!exists && len(z.counts) >= z.max) {
		return nil, false
	}
	z.counts[key] = n + 1
	var once sync.Once
	return func() {
		once.Do(func() {
			z.mu.Lock()
			if z.counts[key] <= 1 {
				delete(z.counts, key)
			} else {
				z.counts[key]--
			}
			z.mu.Unlock()
		})
	}, true
}

// Count returns the number of connections counted for key.
func (z *ConnZone) Count(key string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.counts[key]
}

// Zones is the set of limit zones of one configuration. A reload builds a new set from the previous one, so a
// zone that keeps its name and size keeps its counts (nginx keeps such shared memory zones across reloads).
type Zones struct {
	Req  map[string]*ReqZone
	Conn map[string]*ConnZone
}

// NewZones returns an empty set.
func NewZones() *Zones { return &Zones{Req: map[string]*ReqZone{}, Conn: map[string]*ConnZone{}} }

// AddReq adds a limit_req zone, reusing prev's zone of the same name and size.
func (zs *Zones) AddReq(prev *Zones, name string, size int64, rate float64) {
	if prev != nil {
		if z, ok := prev.Req[name]; ok && z.Size == size {
			z.SetRate(rate)
			zs.Req[name] = z
			return
		}
	}
	zs.Req[name] = NewReqZone(name, size, rate)
}

// AddConn adds a limit_conn zone, reusing prev's zone of the same name and size.
func (zs *Zones) AddConn(prev *Zones, name string, size int64) {
	if prev != nil {
		if z, ok := prev.Conn[name]; ok && z.Size == size {
			zs.Conn[name] = z
			return
		}
	}
	zs.Conn[name] = NewConnZone(name, size)
}
