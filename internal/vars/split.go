package vars

import (
	"errors"
	"fmt"
)

// SplitClients is a compiled split_clients block: the value of the part a MurmurHash2 of the evaluated key
// falls in, as nginx's A/B testing module. Immutable once built; safe for concurrent use.
type SplitClients struct {
	key       *Template
	parts     []splitPart
	sum, last uint64 // while building: hundredths of a percent, and the last part's bound
}

type splitPart struct {
	bound uint32 // hashes below it take val; 0: "*" (the rest)
	val   string
}

// NewSplitClients starts split_clients KEY; Add its lines in order.
func NewSplitClients(key *Template) *SplitClients { return &SplitClients{key: key} }

// Add reads one "PERCENT% VALUE" or "* VALUE" line. As in nginx, a percentage has at most two decimals, the
// parts may not add up to more than 100% ("*" counts as what is left, so only another "*" may follow it), and
// a hash past every part gives "".
func (s *SplitClients) Add(pct, val string) error {
	var p uint64
	if pct != "*" {
		n, ok := parsePercent(pct)
		if !ok {
			return fmt.Errorf("invalid percent value %q", pct)
		}
		p = n
	}
	if p == 0 {
		s.sum = 10000
	} else {
		s.sum += p
	}
	if s.sum > 10000 {
		return errors.New("percent total is greater than 100%")
	}
	part := splitPart{val: val}
	if p != 0 {
		s.last += p * 0xffffffff / 10000 // nginx's rounding, part by part
		part.bound = uint32(s.last)
	}
	s.parts = append(s.parts, part)
	return nil
}

// parsePercent reads "12.34%" as hundredths of a percent (1234), as nginx's ngx_atofp with two decimals; 0 is
// refused.
func parsePercent(s string) (uint64, bool) {
	if len(s) < 2 || s[len(s)-1] != '%' {
		return 0, false
	}
	s = s[:len(s)-1]
	var n uint64
	decimals, dot := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !dot:
			dot = true
			continue
		case c < '0' || c > '9':
			return 0, false
		}
		if dot {
			if decimals == 2 {
				return 0, false
			}
			decimals++
		}
		n = n*10 + uint64(c-'0')
		if n > 1e12 {
			return 0, false
		}
	}
	for ; decimals < 2; decimals++ {
		n *= 10
	}
	return n, n != 0
}

func (s *SplitClients) isVolatile() bool { return false }

func (s *SplitClients) eval(r *Request) string {
	h := MurmurHash2(s.key.Eval(r))
	for _, p := range s.parts {
		if h < p.bound || p.bound == 0 {
			return p.val
		}
	}
	return ""
}

// MurmurHash2 is nginx's ngx_murmur_hash2: 32-bit MurmurHash2 with seed 0, the length folded into the initial
// state, and a little-endian read of each 4-byte block.
func MurmurHash2(s string) uint32 {
	const m = 0x5bd1e995
	h := uint32(len(s))
	for len(s) >= 4 {
		k := uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		s = s[4:]
	}
	switch len(s) {
	case 3:
		h ^= uint32(s[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(s[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(s[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
