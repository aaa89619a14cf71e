package vars

import (
	"errors"
	"strconv"
)

// ParseSize parses nginx sizes: "1024", "8k", "1m", "1g" (case-insensitive suffix).
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	mul := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mul = 1 << 10
	case 'm', 'M':
		mul = 1 << 20
	case 'g', 'G':
		mul = 1 << 30
	}
	if mul != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<63-1)/mul {
		return 0, errors.New("invalid size")
	}
	return n * mul, nil
}
