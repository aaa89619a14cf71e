package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Date(2026, 11, 25, 4, 49, 17, 123456789, time.UTC) }

const stamp = "2026/11/25 04:49:17"

func newTestLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewErrorLogHandlerOptions(w, ErrorLogOptions{Level: level, PID: 12345, Now: fixedNow}))
}

type logValuer string

func (v logValuer) LogValue() slog.Value { return slog.StringValue("resolved-" + string(v)) }

func TestErrorLogFormat(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{
		{
			name: "nginx example",
			log: func(l *slog.Logger) {
				l.Error("upstream timed out (110: Connection timed out) while reading response header from upstream",
					"conn", uint64(7), "client", "1.2.3.4", "server", "abc.com", "request", "GET / HTTP/1.1",
					"upstream", "http://127.0.0.1:8888/", "host", "abc.com")
			},
			want: stamp + ` [error] 12345#12345: *7 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 1.2.3.4, server: abc.com, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8888/", host: "abc.com"`,
		},
		{
			name: "well-known attrs printed in nginx order",
			log: func(l *slog.Logger) {
				l.Warn("m", "referrer", "http://r/", "host", "h", "upstream", "u", "request", "GET /x HTTP/1.1",
					"server", "s", "client", "c")
			},
			want: stamp + ` [warn] 12345#12345: m, client: c, server: s, request: "GET /x HTTP/1.1", upstream: "u", host: "h", referrer: "http://r/"`,
		},
		{
			name: "other attrs follow the message, before well-known ones",
			log: func(l *slog.Logger) {
				l.Error("open() failed", "host", "h", "file", "/srv/x", "errno", 2, "ok", false, "ratio", 0.5,
					"took", 1500*time.Millisecond, "n", uint64(3))
			},
			want: stamp + ` [error] 12345#12345: open() failed, file: /srv/x, errno: 2, ok: false, ratio: 0.5, took: 1.5s, n: 3, host: "h"`,
		},
		{
			name: "conn as int",
			log:  func(l *slog.Logger) { l.Info("client closed connection", "conn", 42, "client", "::1") },
			want: stamp + ` [info] 12345#12345: *42 client closed connection, client: ::1`,
		},
		{
			name: "negative or non-integer conn is an ordinary attr",
			log:  func(l *slog.Logger) { l.Info("m", "conn", -1, "conn", "x") },
			want: stamp + ` [info] 12345#12345: m, conn: -1, conn: x`,
		},
		{
			name: "groups are flattened with dots",
			log: func(l *slog.Logger) {
				l.Info("m", slog.Group("tls", "sni", "a.com", slog.Group("peer", "ver", "1.3")), "k", "v")
			},
			want: stamp + ` [info] 12345#12345: m, tls.sni: a.com, tls.peer.ver: 1.3, k: v`,
		},
		{
			name: "WithGroup qualifies keys, so grouped well-known names are ordinary",
			log: func(l *slog.Logger) {
				l.With("client", "1.1.1.1").WithGroup("up").With("host", "h1").Info("m", "client", "c2", "conn", 9)
			},
			want: stamp + ` [info] 12345#12345: m, up.host: h1, up.client: c2, up.conn: 9, client: 1.1.1.1`,
		},
		{
			name: "With supplies conn and context; record attrs override",
			log: func(l *slog.Logger) {
				cl := l.With("conn", uint64(3), "client", "10.0.0.1", "server", "old", "phase", "read")
				cl.Error("recv() failed", "server", "new", "request", "GET / HTTP/1.1")
			},
			want: stamp + ` [error] 12345#12345: *3 recv() failed, phase: read, client: 10.0.0.1, server: new, request: "GET / HTTP/1.1"`,
		},
		{
			name: "empty attrs and empty groups are ignored, LogValuers resolved, errors printed",
			log: func(l *slog.Logger) {
				l.Error("m", slog.Attr{}, slog.Group("empty"), "v", logValuer("x"), "err", errors.New("boom"),
					slog.Group("", "inline", 1))
			},
			want: stamp + ` [error] 12345#12345: m, v: resolved-x, err: boom, inline: 1`,
		},
		{
			name: "control characters escaped; quotes and backslashes inside quoted values",
			log: func(l *slog.Logger) {
				l.Error("bad\nline\x7f", "k", "a\tb \"q\"", "request", "GET /\"a\\b\r\n HTTP/1.1", "client", `x"y`)
			},
			want: stamp + ` [error] 12345#12345: bad\x0Aline\x7F, k: a\x09b "q", client: x"y, request: "GET /\x22a\x5Cb\x0D\x0A HTTP/1.1"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(newTestLogger(&buf, slog.LevelDebug))
			if got := buf.String(); got != tt.want+"\n" {
				t.Errorf("got  %q\nwant %q", got, tt.want+"\n")
			}
		})
	}
}

func TestErrorLogLevels(t *testing.T) {
	tests := []struct {
		level slog.Level
		name  string
	}{
		{slog.LevelDebug - 4, "debug"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelInfo + 1, "info"},
		{LevelNotice, "notice"},
		{slog.LevelWarn, "warn"},
		{slog.LevelError, "error"},
		{LevelCrit, "crit"},
		{LevelAlert, "alert"},
		{LevelEmerg, "emerg"},
		{LevelEmerg + 100, "emerg"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.level), func(t *testing.T) {
			for _, conn := range []bool{false, true} {
				var buf bytes.Buffer
				l := newTestLogger(&buf, slog.Level(-100))
				want := stamp + " [" + tt.name + "] 12345#12345: "
				if conn {
					l = l.With("conn", uint64(1))
					want += "*1 "
				}
				l.Log(context.Background(), tt.level, "hello")
				want += "hello\n"
				if got := buf.String(); got != want {
					t.Errorf("got %q, want %q", got, want)
				}
			}
		})
	}
}

func TestErrorLogLevelFiltering(t *testing.T) {
	all := []slog.Level{slog.LevelDebug, slog.LevelInfo, LevelNotice, slog.LevelWarn, slog.LevelError, LevelCrit,
		LevelAlert, LevelEmerg}
	for i, min := range all {
		t.Run(LevelName(min), func(t *testing.T) {
			var buf bytes.Buffer
			l := newTestLogger(&buf, min)
			for _, lv := range all {
				l.Log(context.Background(), lv, "x")
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				if line != "" {
					got = append(got, line[len(stamp)+2:strings.Index(line, "]")])
				}
			}
			var want []string
			for _, lv := range all[i:] {
				want = append(want, LevelName(lv))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("levels written %v, want %v", got, want)
			}
		})
	}
}

func TestErrorLogDefaultsAndLevelVar(t *testing.T) {
	var buf bytes.Buffer
	h := NewErrorLogHandlerOptions(&buf, ErrorLogOptions{PID: 1})
	if h.Enabled(context.Background(), slog.LevelWarn) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Errorf("nil Level: want nginx default error")
	}

	var lv slog.LevelVar
	lv.Set(slog.LevelError)
	l := newTestLogger(&buf, &lv)
	l.Info("dropped")
	lv.Set(slog.LevelInfo)
	l.Info("kept")
	if got, want := buf.String(), stamp+" [info] 12345#12345: kept\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// Without Now, the record's time is used, formatted in its location.
	buf.Reset()
	h = NewErrorLogHandler(&buf, slog.LevelInfo, 7)
	r := slog.NewRecord(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), slog.LevelInfo, "t", 0)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "2001/02/03 04:05:06 [info] 7#7: t\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestErrorLogWriteError(t *testing.T) {
	h := NewErrorLogHandler(errWriter{}, slog.LevelInfo, 1)
	r := slog.NewRecord(time.Now(), slog.LevelError, "x", 0)
	if err := h.Handle(context.Background(), r); err == nil {
		t.Error("Handle returned nil for a failing writer")
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{"notice", LevelNotice, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"crit", LevelCrit, false},
		{"alert", LevelAlert, false},
		{"emerg", LevelEmerg, false},
		{"warning", 0, true},
		{"Error", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && LevelName(got) != tt.in {
			t.Errorf("LevelName(ParseLevel(%q)) = %q", tt.in, LevelName(got))
		}
	}
}

var errorLineRE = regexp.MustCompile(`^` + stamp + ` \[error\] 12345#12345: \*(\d+) message (\d+), k: (x+), client: 10\.0\.0\.(\d+)$`)

// TestErrorLogConcurrent checks that concurrent loggers, through a plain writer and through a *File,
// produce only whole lines.
func TestErrorLogConcurrent(t *testing.T) {
	var buf bytes.Buffer
	f, err := OpenFile(filepath.Join(t.TempDir(), "error.log"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{&buf, f} {
		t.Run(fmt.Sprintf("%T", w), func(t *testing.T) {
			const goroutines, perG = 16, 200
			base := newTestLogger(w, slog.LevelDebug)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					l := base.With("conn", uint64(g), "client", fmt.Sprint("10.0.0.", g))
					for i := range perG {
						l.Error(fmt.Sprint("message ", i), "k", strings.Repeat("x", 1+(g*perG+i)%3000))
					}
				})
			}
			wg.Wait()
			var data string
			if w == f {
				data = readFile(t, f.Path())
			} else {
				data = buf.String()
			}
			checkLines(t, data, goroutines, perG, func(line string) (g, i int, ok bool) {
				m := errorLineRE.FindStringSubmatch(line)
				if m == nil || m[1] != m[4] {
					return 0, 0, false
				}
				fmt.Sscan(m[1], &g)
				fmt.Sscan(m[2], &i)
				return g, i, len(m[3]) == 1+(g*perG+i)%3000
			})
		})
	}
}

func BenchmarkErrorLogHandler(b *testing.B) {
	l := slog.New(NewErrorLogHandler(io.Discard, slog.LevelInfo, 1)).With("conn", uint64(7), "client", "1.2.3.4",
		"server", "abc.com")
	b.ReportAllocs()
	for b.Loop() {
		l.Error("upstream timed out while reading response header from upstream", "request", "GET / HTTP/1.1",
			"upstream", "http://127.0.0.1:8888/", "host", "abc.com")
	}
}
