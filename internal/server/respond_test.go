package server

import "testing"

// TestGzipRatio: $gzip_ratio as nginx formats it, two decimals rounded half up.
func TestGzipRatio(t *testing.T) {
	for _, tt := range []struct {
		in, out int64
		want    string
	}{
		{1000, 100, "10.00"},
		{2125, 1000, "2.13"}, // nginx's own example of the rounding
		{2124, 1000, "2.12"},
		{1999, 1000, "2.00"},
		{995, 1000, "1.00"}, // 0.995 rounds up through the whole
		{10, 30, "0.33"},
		{5, 0, ""},
	} {
		if got := gzipRatio(tt.in, tt.out); got != tt.want {
			t.Errorf("gzipRatio(%d, %d) = %q, want %q", tt.in, tt.out, got, tt.want)
		}
	}
}
