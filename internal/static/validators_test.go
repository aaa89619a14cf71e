package static

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestValidators checks that the cached values are those formatted afresh, for a file served again, a file
// changed (mtime or size), and the same validators used with another Content-Type.
func TestValidators(t *testing.T) {
	var v Validators
	t0 := time.Date(2024, 2, 29, 7, 8, 9, 0, time.UTC)
	for _, tt := range []struct {
		mtime time.Time
		size  int64
		ctype string
	}{
		{t0, 1000, "text/html"},
		{t0, 1000, "text/html"},                   // again: from the cache
		{t0, 1001, "text/html"},                   // the size changed
		{t0.Add(time.Second), 1001, "text/html"},  // the mtime changed
		{t0.Add(time.Second), 1001, "text/plain"}, // another type, same validators
		{t0.Add(time.Second), 1001, "text/html"},
		{time.Unix(0, 0), 0, ""},
	} {
		e := v.get(tt.mtime, tt.size, tt.ctype)
		got := []string{e.lastModified[0], e.etag[0], e.length[0], e.acceptRanges[0], e.ctype[0]}
		want := []string{tt.mtime.UTC().Format(http.TimeFormat), string(appendETag(nil, tt.mtime, tt.size)), strconv.FormatInt(tt.size, 10), "bytes", tt.ctype}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%v %d %q: value %d %q, want %q", tt.mtime, tt.size, tt.ctype, i, got[i], want[i])
			}
		}
		for _, s := range [][]string{e.lastModified, e.etag, e.length, e.acceptRanges, e.ctype} {
			if len(s) != 1 || cap(s) != 1 {
				t.Errorf("%v %d: a value of length %d, capacity %d; an Add would write into the shared entry", tt.mtime, tt.size, len(s), cap(s))
			}
		}
		if e2 := v.get(tt.mtime, tt.size, tt.ctype); e2 != e {
			t.Errorf("%v %d %q: a second lookup made a new entry", tt.mtime, tt.size, tt.ctype)
		}
	}
}
