package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Ignore is the part of proxy_ignore_headers that concerns the cache: upstream fields whose say on caching is
// not heard.
type Ignore uint8

// The fields proxy_ignore_headers can silence for the cache.
const (
	IgnoreAccelExpires Ignore = 1 << iota
	IgnoreExpires
	IgnoreCacheControl
	IgnoreSetCookie
	IgnoreVary
)

// Valid is one proxy_cache_valid line: responses with one of Codes (any status when Any) stay fresh for D.
type Valid struct {
	Codes []int
	Any   bool
	D     time.Duration
}

// Field is one upstream response field with its values, in the order they came (canonical name).
type Field struct {
	Name   string
	Values []string
}

// Validity is nginx 1.22's decision whether an upstream response is cached and until when (Unix seconds). The
// fields are read in the order they came, as nginx's header handlers run: X-Accel-Expires (seconds, or @ and
// an absolute time; 0 forbids caching) outranks a Cache-Control that comes after it; Cache-Control's no-cache,
// no-store or private forbid caching, s-maxage or else max-age give the time (0 forbids); Expires counts only
// when nothing earlier gave a time (a past or unreadable date forbids); Set-Cookie, `Vary: *` and a Vary
// longer than 128 bytes forbid caching. Without a time from the fields, the first proxy_cache_valid line listing the status gives it; with
// none the response is not cached. Each may be ignored (proxy_ignore_headers).
func Validity(status int, fields []Field, ign Ignore, valid []Valid, now time.Time) (until int64, ok bool) {
	cacheable := true
	var sec int64
	accel := false
	for _, f := range fields {
		for _, v := range f.Values {
			switch f.Name {
			case "X-Accel-Expires":
				accel = true
				if ign&IgnoreAccelExpires != 0 {
					continue
				}
				if abs, found := strings.CutPrefix(v, "@"); found {
					if n, err := atoi(abs); err == nil {
						sec = n
					}
					continue
				}
				switch n, err := atoi(v); {
				case err != nil:
				case n == 0:
					cacheable = false
				default:
					sec = now.Unix() + n
				}
			case "Cache-Control":
				if ign&IgnoreCacheControl != 0 || (sec != 0 && accel) {
					continue
				}
				l := strings.ToLower(v)
				if strings.Contains(l, "no-cache") || strings.Contains(l, "no-store") || strings.Contains(l, "private") {
					cacheable = false
					continue
				}
				i, off := strings.Index(l, "s-maxage="), len("s-maxage=")
				if i < 0 {
					i, off = strings.Index(l, "max-age="), len("max-age=")
				}
				if i < 0 {
					continue
				}
				var n int64
				bad := false
				for _, c := range []byte(l[i+off:]) {
					if c == ',' || c == ';' || c == ' ' {
						break
					}
					if c < '0' || c > '9' {
						bad = true
						break
					}
					n = n*10 + int64(c-'0')
				}
				if bad || n == 0 {
					cacheable = false
					continue
				}
				sec = now.Unix() + n
			case "Expires":
				if ign&IgnoreExpires != 0 || sec != 0 {
					continue
				}
				t, err := http.ParseTime(v)
				if err != nil || t.Unix() < now.Unix() {
					cacheable = false
					continue
				}
				sec = t.Unix()
			case "Set-Cookie":
				if ign&IgnoreSetCookie == 0 {
					cacheable = false
				}
			case "Vary":
				// a variant is kept per value of the fields named (varyOf); every value is one variant more
				// than nginx keeps apart, and one longer than it keeps is not cached
				if ign&IgnoreVary == 0 && (strings.TrimSpace(v) == "*" || len(v) > varyMax) {
					cacheable = false
				}
			}
		}
	}
	if !cacheable {
		return 0, false
	}
	if sec != 0 {
		return sec, true
	}
	if d := ValidFor(valid, status); d > 0 {
		return now.Add(d).Unix(), true
	}
	return 0, false
}

// varyOf is the Vary of a response as nginx 1.22 keeps it for variants: the last Vary line, "" when there is
// none or proxy_ignore_headers Vary.
func varyOf(fields []Field, ign Ignore) string {
	vary := ""
	if ign&IgnoreVary == 0 {
		for _, f := range fields {
			if f.Name == "Vary" && len(f.Values) > 0 {
				vary = strings.TrimSpace(f.Values[len(f.Values)-1])
			}
		}
	}
	return vary
}

// ValidFor is the proxy_cache_valid time of status: the first line naming it (or any), 0 for none.
func ValidFor(valid []Valid, status int) time.Duration {
	for _, v := range valid {
		if v.Any {
			return v.D
		}
		for _, c := range v.Codes {
			if c == status {
				return v.D
			}
		}
	}
	return 0
}

// atoi is nginx's ngx_atoi: decimal digits only, no sign, not empty.
func atoi(s string) (int64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}
