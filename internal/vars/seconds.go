package vars

import (
	"strconv"
	"time"
)

// UpstreamTime is d as $upstream_*_time give it, "" when no template reads those (NoUpstreamTimes).
func (r *Request) UpstreamTime(d time.Duration) string {
	if r.NoUpstreamTimes {
		return ""
	}
	return Seconds(d)
}

// UpstreamSince is UpstreamTime of the time since start; without a reader the clock is not read.
func (r *Request) UpstreamSince(start time.Time) string {
	if r.NoUpstreamTimes {
		return ""
	}
	return Seconds(time.Since(start))
}

// Seconds formats a duration in seconds with millisecond resolution, as nginx's $upstream_*_time. Under half
// a millisecond (a pooled connection's connect time, most loopback exchanges) it is "0.000" without
// formatting; otherwise the milliseconds are written as integers, which rounds as strconv.FormatFloat of the
// seconds does except at an exact half millisecond (where the float's binary value decides: FormatFloat).
func Seconds(d time.Duration) string {
	if d < 500*time.Microsecond {
		return "0.000"
	}
	if d%time.Millisecond == 500*time.Microsecond {
		return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	}
	ms := int64((d + 500*time.Microsecond) / time.Millisecond)
	var b [24]byte
	buf := strconv.AppendInt(b[:0], ms/1000, 10)
	f := ms % 1000
	buf = append(buf, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	return string(buf)
}
