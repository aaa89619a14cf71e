package subfilter

import (
	"io"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// Matcher finds a set of lower-case strings in text, ASCII case-insensitively. It is read only once built.
type Matcher struct {
	pats  []string // in configuration order: the first that matches at a place wins
	max   int      // the longest
	first [256]bool
}

// NewMatcher builds the matcher of searches (non-empty; lower-cased unless they are already).
func NewMatcher(searches []string) *Matcher {
	m := &Matcher{pats: make([]string, len(searches))}
	for i, s := range searches {
		s = lower(s)
		m.pats[i] = s
		m.max = max(m.max, len(s))
		c := s[0]
		m.first[c] = true
		if c >= 'a' && c <= 'z' {
			m.first[c-'a'+'A'] = true
		}
	}
	return m
}

// lower lower-cases ASCII letters only, as nginx's ngx_strlow.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// find returns the first place p in text[from:stop] where a string matches: i is the first string in order
// that matches there whole, or -1 with partial set when, before any does, one matches up to the end of text
// and may still match once more comes. Strings whose done is set are passed over. p is stop when none does.
func (m *Matcher) find(text []byte, from, stop int, done []bool) (p, i int, partial bool) {
	for p = from; p < stop; p++ {
		if !m.first[text[p]] {
			continue
		}
	pats:
		for i, pat := range m.pats {
			if done != nil && done[i] {
				continue
			}
			rest := text[p:]
			n := min(len(rest), len(pat))
			for k := 0; k < n; k++ {
				c := rest[k]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				if c != pat[k] {
					continue pats
				}
			}
			if n == len(pat) {
				return p, i, false
			}
			return p, -1, true
		}
	}
	return stop, -1, false
}

// Stream is one response's substitution: Write takes the body as it comes and writes it, replaced, to the
// writer underneath at once, except a possible match that the next write may complete (at most the longest
// search string less one byte); Close sends that.
type Stream struct {
	m       *Matcher
	out     io.Writer
	v       *vars.Request
	repl    []*vars.Template // the replacements, as m's strings
	subs    [][]byte         // replacements evaluated (at their first use, as nginx)
	once    bool
	done    []bool // sub_filter_once: the strings replaced already
	applied int
	pass    bool   // sub_filter_once: every string has been replaced, the rest passes unsearched
	pend    []byte // the held possible match
	join    []byte // pend and the start of the next write, searched together
	err     error  // the writer underneath failed
}

// Write replaces the matches in b (and in what was held before it) and writes the result on.
func (s *Stream) Write(b []byte) (int, error) {
	n := len(b)
	if s.err != nil {
		return 0, s.err
	}
	if len(s.pend) > 0 {
		// the places that start in what was held are searched with as much of b as a match can reach
		lp := len(s.pend)
		s.join = append(append(s.join[:0], s.pend...), b[:min(len(b), s.m.max-1)]...)
		s.pend = s.pend[:0]
		end, held := s.scan(s.join, lp)
		if held {
			return n, s.err
		}
		b = b[end-lp:]
	}
	s.scan(b, len(b))
	if s.err != nil {
		return 0, s.err
	}
	return n, nil
}

// scan writes text with the matches that start before stop replaced, up to stop or the end of the last match
// if that is further, and returns where it ended. A possible match at the end of text is held (held true).
func (s *Stream) scan(text []byte, stop int) (end int, held bool) {
	from := 0
	for from < stop && !s.pass {
		p, i, partial := s.m.find(text, from, stop, s.done)
		s.emit(text[from:p])
		if p == stop {
			return stop, false
		}
		if partial {
			s.pend = append(s.pend[:0], text[p:]...)
			return len(text), true
		}
		s.emit(s.replacement(i))
		from = p + len(s.m.pats[i])
		if s.once {
			if s.done == nil {
				s.done = make([]bool, len(s.m.pats))
			}
			s.done[i] = true
			s.applied++
			s.pass = s.applied == len(s.m.pats)
		}
	}
	if from < stop {
		s.emit(text[from:stop]) // (once every string is replaced)
		from = stop
	}
	return from, false
}

// replacement returns string i's replacement, evaluated at its first use.
func (s *Stream) replacement(i int) []byte {
	if s.subs == nil {
		s.subs = make([][]byte, len(s.repl))
	}
	if s.subs[i] == nil {
		s.subs[i] = s.repl[i].Append(make([]byte, 0, 16), s.v)
	}
	return s.subs[i]
}

func (s *Stream) emit(b []byte) {
	if len(b) == 0 || s.err != nil {
		return
	}
	_, s.err = s.out.Write(b)
}

// Close ends the body: a possible match still held is sent as it is (nginx does not search it again for the
// strings that come after the one it began).
func (s *Stream) Close() error {
	if len(s.pend) > 0 {
		s.emit(s.pend)
		s.pend = s.pend[:0]
	}
	return s.err
}
