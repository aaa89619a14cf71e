package config

import (
	"errors"
	"github.com/sluice-proxy/sluice/internal/vars"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses nginx time values: "30", "30s", "500ms", "1h 30m", "1h30m", "2d", "1w", "1M", "1y".
// A bare number is seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty time value")
	}
	var total time.Duration
	for s != "" {
		s = strings.TrimLeft(s, " ")
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, errors.New("invalid time value")
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			return 0, err
		}
		s = s[i:]
		unit := time.Second
		switch {
		case strings.HasPrefix(s, "ms"):
			unit, s = time.Millisecond, s[2:]
		case s == "" || s[0] == ' ':
		default:
			switch s[0] {
			case 's':
			case 'm':
				unit = time.Minute
			case 'h':
				unit = time.Hour
			case 'd':
				unit = 24 * time.Hour
			case 'w':
				unit = 7 * 24 * time.Hour
			case 'M':
				unit = 30 * 24 * time.Hour
			case 'y':
				unit = 365 * 24 * time.Hour
			default:
				return 0, errors.New("invalid time unit")
			}
			s = s[1:]
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// ParseSize parses nginx sizes: "1024", "8k", "1m", "1g" (case-insensitive suffix).
func ParseSize(s string) (int64, error) { return vars.ParseSize(s) }
