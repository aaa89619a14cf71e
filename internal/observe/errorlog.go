// Package observe writes nginx-style logs: the error log as a log/slog handler, and the log files (error_log and
// access_log destinations) that can be shared, buffered and reopened for logrotate.
package observe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
)

// nginx severities beyond the four slog defines. Debug, info, warn and error are slog.LevelDebug, slog.LevelInfo,
// slog.LevelWarn and slog.LevelError.
const (
	LevelNotice = slog.LevelInfo + 2
	LevelCrit   = slog.LevelError + 4
	LevelAlert  = slog.LevelError + 8
	LevelEmerg  = slog.LevelError + 12
)

// ParseLevel parses an nginx error_log level name: debug, info, notice, warn, error, crit, alert or emerg.
// Names are case-sensitive, as in nginx.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "notice":
		return LevelNotice, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "crit":
		return LevelCrit, nil
	case "alert":
		return LevelAlert, nil
	case "emerg":
		return LevelEmerg, nil
	}
	return 0, fmt.Errorf("observe: invalid log level %q", s)
}

// LevelName returns the nginx name of l. A level between two nginx levels takes the name of the lower one;
// levels below debug are "debug" and above emerg are "emerg".
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < LevelNotice:
		return "info"
	case l < slog.LevelWarn:
		return "notice"
	case l < slog.LevelError:
		return "warn"
	case l < LevelCrit:
		return "error"
	case l < LevelAlert:
		return "crit"
	case l < LevelEmerg:
		return "alert"
	}
	return "emerg"
}

// ErrorLogOptions configures an error log handler.
type ErrorLogOptions struct {
	// Level is the minimum level written. A slog.LevelVar lets a reload change it in place.
	// Nil means slog.LevelError, nginx's default.
	Level slog.Leveler
	// PID is printed as "PID#PID:" (nginx prints pid#tid; a Go process has one pid). Zero means os.Getpid().
	PID int
	// Now, if set, supplies the timestamp of every line instead of the record's time (for tests).
	Now func() time.Time
}

// NewErrorLogHandler returns a slog.Handler that writes nginx-format error log lines to w for records at or
// above level. A zero pid means os.Getpid(). See NewErrorLogHandlerOptions for the line format.
func NewErrorLogHandler(w io.Writer, level slog.Level, pid int) slog.Handler {
	return NewErrorLogHandlerOptions(w, ErrorLogOptions{Level: level, PID: pid})
}

// NewErrorLogHandlerOptions returns a slog.Handler writing nginx error log lines to w, one Write per line:
//
//	2026/11/25 04:49:17 [error] 12345#12345: *7 message, k: v, client: 1.2.3.4, server: abc.com, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8888/", host: "abc.com", referrer: "http://abc.com/"
//
// The timestamp is in the time's own location (local time by default). An integer attribute "conn" becomes the
// "*N " prefix of the message. The attributes client, server, request, upstream, host and referrer are printed
// last, in that order and quoted as nginx does; any other attributes follow the message as ", key: value" in the
// order given. Groups are flattened into dotted keys, so a grouped "client" is an ordinary attribute. Control
// characters are escaped as \xHH so a record is always one line; quoted values also escape '"' and '\'.
// Writes to w are serialized unless w is a *File, which is already safe for concurrent use.
func NewErrorLogHandlerOptions(w io.Writer, opts ErrorLogOptions) slog.Handler {
	level := opts.Level
	if level == nil {
		level = slog.LevelError
	}
	pid := opts.PID
	if pid == 0 {
		pid = os.Getpid()
	}
	p := strconv.Itoa(pid)
	sh := &errorLogShared{
		w:      w,
		level:  level,
		now:    opts.Now,
		pidTag: "#" + p + ": ",
		pid:    p,
	}
	_, sh.safe = w.(*File)
	return &errorLogHandler{sh: sh}
}

// errorLogShared is the state common to a handler and all handlers derived from it by WithAttrs and WithGroup.
type errorLogShared struct {
	w      io.Writer
	safe   bool // w is safe for concurrent use, mu is not needed
	mu     sync.Mutex
	level  slog.Leveler
	now    func() time.Time
	pid    string
	pidTag string // "#pid: "
	pool   sync.Pool
}

// Well-known attributes, in the order nginx prints them.
const (
	wkClient = iota
	wkServer
	wkRequest
	wkUpstream
	wkHost
	wkReferrer
	numWellKnown
)

var wellKnownKeys = [numWellKnown]string{"client", "server", "request", "upstream", "host", "referrer"}

// wellKnownPrefix is what precedes each well-known value; nginx quotes all but client and server.
var wellKnownPrefix = [numWellKnown]string{
	", client: ", ", server: ", `, request: "`, `, upstream: "`, `, host: "`, `, referrer: "`,
}

func wellKnownIndex(key string) int {
	for i, k := range wellKnownKeys {
		if k == key {
			return i
		}
	}
	return -1
}

// context carries the connection id and well-known attributes, collected from WithAttrs and then the record.
type errorLogContext struct {
	conn    uint64
	hasConn bool
	set     [numWellKnown]bool
	vals    [numWellKnown]slog.Value
}

type errorLogHandler struct {
	sh     *errorLogShared
	ctx    errorLogContext
	attrs  []byte // preformatted ", key: value" of other attributes from WithAttrs
	prefix string // group prefix ("a.b.") applied to keys added from now on
}

type lineBuffer struct {
	line  []byte
	other []byte
}

func (h *errorLogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.sh.level.Level()
}

func (h *errorLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	h2.attrs = append([]byte(nil), h.attrs...)
	for _, a := range as {
		h2.attrs = addAttr(h2.attrs, &h2.ctx, h2.prefix, a)
	}
	return &h2
}

func (h *errorLogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

func (h *errorLogHandler) Handle(_ context.Context, r slog.Record) error {
	sh := h.sh
	lb, _ := sh.pool.Get().(*lineBuffer)
	if lb == nil {
		lb = &lineBuffer{line: make([]byte, 0, 256), other: make([]byte, 0, 128)}
	}
	defer func() {
		if cap(lb.line) <= 64<<10 && cap(lb.other) <= 64<<10 {
			sh.pool.Put(lb)
		}
	}()

	c := h.ctx
	other := append(lb.other[:0], h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		other = addAttr(other, &c, h.prefix, a)
		return true
	})

	var t time.Time
	switch {
	case sh.now != nil:
		t = sh.now()
	case !r.Time.IsZero():
		t = r.Time
	default:
		t = time.Now()
	}
	b := appendTimestamp(lb.line[:0], t)
	b = append(b, " ["...)
	b = append(b, LevelName(r.Level)...)
	b = append(b, "] "...)
	b = append(b, sh.pid...)
	b = append(b, sh.pidTag...)
	if c.hasConn {
		b = append(b, '*')
		b = strconv.AppendUint(b, c.conn, 10)
		b = append(b, ' ')
	}
	b = appendEscaped(b, r.Message, false)
	b = append(b, other...)
	for i := range numWellKnown {
		if !c.set[i] {
			continue
		}
		b = append(b, wellKnownPrefix[i]...)
		quoted := i > wkServer
		b = appendValue(b, c.vals[i], quoted)
		if quoted {
			b = append(b, '"')
		}
	}
	b = append(b, '\n')
	lb.line, lb.other = b, other

	if !sh.safe {
		sh.mu.Lock()
		defer sh.mu.Unlock()
	}
	_, err := sh.w.Write(b)
	return err
}

// addAttr records a in c if it is the connection id or a well-known attribute, and otherwise appends it to b
// as ", key: value", flattening groups into dotted keys.
func addAttr(b []byte, c *errorLogContext, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		as := a.Value.Group()
		if len(as) == 0 {
			return b
		}
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, ga := range as {
			b = addAttr(b, c, p, ga)
		}
		return b
	}
	if prefix == "" {
		if a.Key == "conn" {
			switch a.Value.Kind() {
			case slog.KindUint64:
				c.conn, c.hasConn = a.Value.Uint64(), true
				return b
			case slog.KindInt64:
				if n := a.Value.Int64(); n >= 0 {
					c.conn, c.hasConn = uint64(n), true
					return b
				}
			}
		}
		if i := wellKnownIndex(a.Key); i >= 0 {
			c.vals[i], c.set[i] = a.Value, true
			return b
		}
	}
	b = append(b, ", "...)
	b = appendEscaped(b, prefix, false)
	b = appendEscaped(b, a.Key, false)
	b = append(b, ": "...)
	return appendValue(b, a.Value, false)
}

// appendValue appends the text of a resolved, non-group value, escaped for the log line.
func appendValue(b []byte, v slog.Value, quoted bool) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendEscaped(b, v.String(), quoted)
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return appendEscaped(b, v.Duration().String(), quoted)
	case slog.KindTime:
		return v.Time().AppendFormat(b, time.RFC3339Nano)
	}
	switch x := v.Any().(type) {
	case error:
		return appendEscaped(b, x.Error(), quoted)
	case fmt.Stringer:
		return appendEscaped(b, x.String(), quoted)
	case []byte:
		return appendEscaped(b, string(x), quoted)
	default:
		return appendEscaped(b, fmt.Sprint(x), quoted)
	}
}

const hexDigits = "0123456789ABCDEF"

// appendEscaped appends s with control bytes written as \xHH, and inside quotes '"' and '\' too.
func appendEscaped(b []byte, s string, quoted bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != 0x7f && (!quoted || (c != '"' && c != '\\')) {
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendTimestamp appends t as nginx does: "2006/01/02 15:04:05".
func appendTimestamp(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = appendInt(b, year, 4)
	b = append(b, '/')
	b = appendInt(b, int(month), 2)
	b = append(b, '/')
	b = appendInt(b, day, 2)
	b = append(b, ' ')
	b = appendInt(b, hour, 2)
	b = append(b, ':')
	b = appendInt(b, minute, 2)
	b = append(b, ':')
	return appendInt(b, sec, 2)
}

// appendInt appends a non-negative n zero-padded to width digits.
func appendInt(b []byte, n, width int) []byte {
	var d [20]byte
	i := len(d)
	for n >= 10 || width > 1 {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	i--
	d[i] = byte('0' + n)
	return append(b, d[i:]...)
}
