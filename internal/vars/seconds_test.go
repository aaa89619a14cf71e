package vars

import (
	"strconv"
	"testing"
	"time"
)

// TestSeconds: the integer formatting agrees with strconv.FormatFloat of the seconds everywhere.
func TestSeconds(t *testing.T) {
	ds := []time.Duration{0, 1, 499 * time.Microsecond, 499999, 500 * time.Microsecond, 500001, 1499 * time.Microsecond,
		1500 * time.Microsecond, 2*time.Second + 345678*time.Microsecond, 1000*time.Second + 500*time.Microsecond,
		999999999, 59999500000, 61 * time.Minute, 100*time.Hour + 1}
	for d := time.Duration(0); d < 3*time.Second; d += 999_983 { // every millisecond digit, from either side
		ds = append(ds, d, d+500*time.Microsecond, d+499_999, d+500_001)
	}
	for _, d := range ds {
		if got, want := Seconds(d), strconv.FormatFloat(d.Seconds(), 'f', 3, 64); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", d, got, want)
		}
	}
}

// BenchmarkSeconds is one $upstream_*_time value of an exchange that took a few milliseconds.
func BenchmarkSeconds(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Seconds(2*time.Millisecond + 345678)
	}
}
