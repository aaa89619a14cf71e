package gctune

import "testing"

func TestPercent(t *testing.T) {
	tests := []struct {
		live uint64
		want int
	}{
		{0, 100},
		{1 << 20, 100}, // tiny heap: Go's default
		{4 << 20, 100}, // 4 MiB headroom = 100 %
		{8 << 20, 50},  // 4 MiB headroom = 50 %
		{16 << 20, 25},
		{20 << 20, 20},  // 20 % from here on
		{100 << 20, 20}, // 9,000 idle tunnels
		{1 << 30, 20},
	}
	for _, tt := range tests {
		if got := Percent(tt.live); got != tt.want {
			t.Errorf("Percent(%d) = %d, want %d", tt.live, got, tt.want)
		}
	}
}
