package cache

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// An entry file is a fixed-width first line (so Refresh can rewrite the time in place), the key, the upstream
// response's status and fields as it sent them, a blank line and the body:
//
//	SLUICE-CACHE1 <valid, 20 digits> <date, 20 digits> <body offset, 10 digits> <status, 3 digits>\n
//	KEY: <key>\n
//	[VARY: <variant, 32 hex digits> <the response's Vary>\n]
//	[HEADONLY: 1\n]             (a HEAD's response, stored without a body)
//	<Name>: <value>\n …
//	\n
//	<body>
//
// nginx's own files have a binary header; sluice reads only its own.
const (
	magic      = "SLUICE-CACHE1 "
	firstLine  = len(magic) + 20 + 1 + 20 + 1 + 10 + 1 + 3 + 1
	tempPrefix = ".tmp-"
	headOnly   = "HEADONLY: 1\n" // (upstream field names are canonical, never all capitals)
	varyLine   = "VARY: "
)

var errFormat = errors.New("not a cache entry")

// Entry is a committed entry, open for reading.
type Entry struct {
	Key       string
	Status    int
	Fields    []Field // the upstream's fields as stored
	Valid     int64   // fresh until (Unix seconds)
	Date      int64   // when it was stored
	BodyStart int64
	BodySize  int64
	HeadOnly  bool     // the response to a HEAD, without its body
	Vary      string   // the response's Vary, when it has variants
	Variant   [16]byte // with Vary: the variant of the request that stored it
	File      *os.File
}

// Close closes the entry's file.
func (e *Entry) Close() error { return e.File.Close() }

// Body is a reader of the body's bytes from off, n of them: an *io.LimitedReader over the file, which the
// response writer hands to sendfile(2).
func (e *Entry) Body(off, n int64) io.Reader {
	if _, err := e.File.Seek(e.BodyStart+off, io.SeekStart); err != nil {
		return errReader{err}
	}
	return &io.LimitedReader{R: e.File, N: n}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// Get returns the first value of the stored field name (canonical), "" without one.
func (e *Entry) Get(name string) string {
	for _, f := range e.Fields {
		if f.Name == name && len(f.Values) > 0 {
			return f.Values[0]
		}
	}
	return ""
}

func parseFirst(b []byte) (valid, date, bodyStart int64, status int, err error) {
	if len(b) < firstLine || string(b[:len(magic)]) != magic || b[firstLine-1] != '\n' {
		return 0, 0, 0, 0, errFormat
	}
	f := strings.Fields(string(b[len(magic) : firstLine-1]))
	if len(f) != 4 {
		return 0, 0, 0, 0, errFormat
	}
	var nums [4]int64
	for i, s := range f {
		if nums[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, 0, 0, errFormat
		}
	}
	return nums[0], nums[1], nums[2], int(nums[3]), nil
}

// readValid reads the freshness of an entry file, for rebuilding the index.
func readValid(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [firstLine]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return 0, err
	}
	valid, _, _, _, err := parseFirst(b[:])
	return valid, err
}

// openEntry opens and reads the head of an entry file.
func openEntry(path string) (*Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	e, err := readHead(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// headRead is how much of a file readHead reads at once: the usual head fits, a larger one is read whole.
const headRead = 4096

// readHead reads an entry's head: one read of the file's start (two when the head is larger), then one
// string holding the key and every field that the parsed values point into.
func readHead(f *os.File) (*Entry, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var buf [headRead]byte
	n, err := f.ReadAt(buf[:], 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	e := &Entry{File: f}
	if e.Valid, e.Date, e.BodyStart, e.Status, err = parseFirst(buf[:n]); err != nil {
		return nil, err
	}
	if e.BodyStart < int64(firstLine)+2 || e.BodyStart > info.Size() || e.BodyStart > 1<<20 {
		return nil, errFormat
	}
	var head string
	if e.BodyStart <= int64(n) {
		head = string(buf[firstLine:e.BodyStart])
	} else {
		b := make([]byte, e.BodyStart-int64(firstLine))
		if _, err := f.ReadAt(b, int64(firstLine)); err != nil {
			return nil, err
		}
		head = string(b)
	}
	line, rest, _ := strings.Cut(head, "\n")
	key, ok := strings.CutPrefix(line, "KEY: ")
	if !ok || !strings.HasSuffix(rest, "\n") {
		return nil, errFormat
	}
	e.Key = key
	if r, ok := strings.CutPrefix(rest, varyLine); ok {
		line, r, _ = strings.Cut(r, "\n")
		h, vary, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 16 || vary == "" {
			return nil, errFormat
		}
		e.Vary, e.Variant, rest = vary, [16]byte(b), r
	}
	if r, ok := strings.CutPrefix(rest, headOnly); ok {
		e.HeadOnly, rest = true, r
	}
	lines := strings.Count(rest, "\n") - 1
	e.Fields = make([]Field, 0, lines)
	vals := make([]string, lines) // every value, in one array
	for rest != "\n" {
		line, rest, _ = strings.Cut(rest, "\n")
		name, val, ok := strings.Cut(line, ": ")
		if !ok || rest == "" {
			return nil, errFormat
		}
		vals[0] = val
		if k := len(e.Fields) - 1; k >= 0 && e.Fields[k].Name == name {
			e.Fields[k].Values = e.Fields[k].Values[:len(e.Fields[k].Values)+1]
		} else {
			e.Fields = append(e.Fields, Field{Name: name, Values: vals[:1]})
		}
		vals = vals[1:]
	}
	for i := range e.Fields {
		v := e.Fields[i].Values
		e.Fields[i].Values = v[:len(v):len(v)] // an append by a filter must not overwrite the next field
	}
	e.BodySize = info.Size() - e.BodyStart
	return e, nil
}

// Refresh makes the committed entry of hash fresh until valid (a 304 to a revalidation): the time is
// rewritten in the file and the index.
func (z *Zone) Refresh(hash [16]byte, valid int64) error {
	f, err := os.OpenFile(z.File(hash), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(fmt.Appendf(nil, "%020d", valid), int64(len(magic))); err != nil {
		return err
	}
	z.mu.Lock()
	if n := z.nodes[hash]; n != nil && n.exists {
		n.valid = valid
	}
	z.mu.Unlock()
	return nil
}

// Writer writes a new entry to a temporary file in the cache directory (so the rename that commits it never
// crosses file systems); Commit puts it in place, Abort drops it. Nothing of the body is held in memory.
type Writer struct {
	z     *Zone
	hash  [16]byte
	valid int64
	f     *os.File
	bw    *bufio.Writer
	n     int64
	err   error
}

// Create starts the entry of l's key for a response with status and fields, fresh until valid, stored at date.
// A response that varies (vary, its Vary unless ignored) is stored with the variant of l's request: in place
// of the entry l found, or, when that was a variant's and the response's variant is another (nginx's
// ngx_http_file_cache_update_variant), in place of the key's main entry.
func (z *Zone) Create(l *Lookup, status int, fields []Field, vary string, valid, date int64) (*Writer, error) {
	hash := l.Hash
	var v [16]byte
	if vary != "" {
		v = variant(l.main, vary, l.req)
	}
	if l.secondary && (vary == "" || v != l.Hash) {
		hash = l.main
	}
	f, err := os.CreateTemp(z.spec.Path, tempPrefix)
	if err != nil {
		return nil, err
	}
	var head bytes.Buffer
	head.Grow(512)
	fmt.Fprintf(&head, "KEY: %s\n", strings.ReplaceAll(l.Key, "\n", " "))
	if vary != "" {
		fmt.Fprintf(&head, "%s%x %s\n", varyLine, v, vary)
	}
	if l.head {
		head.WriteString(headOnly)
	}
	for _, fl := range fields {
		for _, v := range fl.Values {
			if strings.ContainsAny(fl.Name, "\r\n:") || strings.ContainsAny(v, "\r\n") {
				continue
			}
			head.WriteString(fl.Name)
			head.WriteString(": ")
			head.WriteString(v)
			head.WriteByte('\n')
		}
	}
	head.WriteByte('\n')
	w := &Writer{z: z, hash: hash, valid: valid, f: f, bw: bufio.NewWriterSize(f, 32<<10)}
	fmt.Fprintf(w.bw, "%s%020d %020d %010d %03d\n", magic, valid, date, int64(firstLine+head.Len()), status)
	w.bw.Write(head.Bytes())
	return w, nil
}

// Write appends body bytes. A failure is kept and reported by Commit; the caller's transfer goes on.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err == nil {
		_, w.err = w.bw.Write(p)
		w.n += int64(len(p))
	}
	return len(p), nil
}

// Commit puts the complete entry in place of any older one and records it in the index.
func (w *Writer) Commit() error {
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	var size int64
	if w.err == nil {
		var info os.FileInfo
		if info, w.err = w.f.Stat(); w.err == nil {
			size = info.Size()
		}
	}
	if cerr := w.f.Close(); w.err == nil {
		w.err = cerr
	}
	if w.err != nil {
		os.Remove(w.f.Name())
		return w.err
	}
	path := w.z.File(w.hash)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		os.Remove(w.f.Name())
		return err
	}
	w.z.mu.Lock()
	defer w.z.mu.Unlock()
	if err := os.Rename(w.f.Name(), path); err != nil {
		os.Remove(w.f.Name())
		return err
	}
	w.z.commit(w.hash, size, w.valid)
	return nil
}

// Abort drops the entry being written (a transfer that failed or was cut).
func (w *Writer) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}
