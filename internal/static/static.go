// Package static serves files from a document root with nginx's semantics: index lookup (the caller turns a
// found index into an internal redirect), directory listings, ETag/Last-Modified validators, ranges, HEAD,
// precompressed .gz files, and refusal of dotfiles and symbolic links when so configured.
//
// Path safety: the URI reaching here is already normalised (no "..", no NUL, no encoded traversal), so root +
// URI names a file below root. Symbolic links inside the root are followed unless disable_symlinks is on
// (then any link between root and the file gets 403), as nginx does by default.
package static

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sluice-proxy/sluice/internal/charset"
	"github.com/sluice-proxy/sluice/internal/compress"
	"github.com/sluice-proxy/sluice/internal/subfilter"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// Request says what to serve.
type Request struct {
	Root        string // $document_root (or the alias), no trailing slash
	URI         string // normalised URI
	Path        string // file system path for URI; "" means Root+URI
	Types       map[string]string
	DefaultType string
	ETag        bool       // send nginx's ETag and honour If-None-Match
	GzipStatic  GzipStatic // serve Path.gz to clients accepting gzip (or to all: gzip_static always)
	Dotfiles    bool       // serve names starting with "."
	NoSymlinks  bool       // refuse paths with a symbolic link below Root
	Autoindex   bool       // list directories without an index file
	Listing     Listing
	// Bufs, when set, lends SmallFile-sized buffers (*[]byte) for small files.
	Bufs *sync.Pool
	// Validators, when set, keeps the formatted Last-Modified, ETag and Content-Length of recent files.
	Validators *Validators
	// IfModifiedSince is if_modified_since: how If-Modified-Since compares with the file's time.
	IfModifiedSince IMS
	// MaxRanges is max_ranges: when positive, the most ranges one request may ask for (more get the whole
	// file); 0 sets no limit, as nginx's default; negative (max_ranges 0) turns range requests off, and
	// Accept-Ranges with them.
	MaxRanges int
	// NoConditions: the answer is an error page (error_page), whose status is not 200; preconditions and
	// ranges do not apply to it, as nginx's filters apply to 200 only.
	NoConditions bool
	// Parts, when set, numbers multipart/byteranges boundaries, as nginx's process-wide counter.
	Parts *atomic.Uint64
	// Gzip is the location's gzip filter (nil with gzip off): a file it will compress is sent whole, as in
	// nginx, whose range filter sees no length once gzip has taken it.
	Gzip *compress.Gzip
	// Gunzip is the location's gunzip (nil: off): a .gz it decompresses is sent whole, without ranges
	Gunzip *compress.Gunzip
	// Sub is the location's sub_filter (nil without): a file it will rewrite is sent whole, without
	// Accept-Ranges, as in nginx, whose range filter sees no length once the sub filter has taken it.
	Sub *subfilter.Filter
	// Charset is the location's charset filter (nil when the configuration names no charset), with the
	// request's variables for a charset given by one: a file it will recode to or from utf-8 is sent whole,
	// without Accept-Ranges, as nginx's range filter sees no length once the charset filter has taken it.
	Charset     *charset.Filter
	CharsetVars *vars.Request
}

func (req *Request) path() string {
	if req.Path != "" {
		return req.Path
	}
	return filepath.Join(req.Root, filepath.FromSlash(req.URI))
}

// Serve writes the file for req.URI and returns 0, or returns the status for the caller's error page handling
// (404, 403, 405; for a directory without its trailing slash 301, with Location set).
func Serve(w http.ResponseWriter, r *http.Request, req Request) int {
	// as nginx: methods other than GET, HEAD and POST are refused at once; a POST only once the file is found
	// (404 for a missing one, which an error_page for 404 then answers)
	post := r.Method == http.MethodPost
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !post {
		return http.StatusMethodNotAllowed
	}
	if !req.Dotfiles && Hidden(req.URI) {
		return http.StatusNotFound
	}
	name := req.path()
	if !post {
		if status, ok := precompressed(w, r, name, &req); ok {
			return status
		}
	}
	var fi statInfo
	fd, err := req.openStat(name, &fi)
	if err != nil {
		switch {
		case req.NoSymlinks && (errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EXDEV)):
			return http.StatusForbidden // a symbolic link below the root, or a name outside it
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.ELOOP):
			return http.StatusNotFound
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return http.StatusForbidden
		}
		return http.StatusInternalServerError
	}
	switch {
	case fi.IsDir() && strings.HasSuffix(req.URI, "/"):
		syscall.Close(fd)
		if req.Autoindex && !post {
			return listing(w, r, name, &req)
		}
		return http.StatusForbidden // a directory without index (autoindex off)
	case fi.IsDir():
		syscall.Close(fd)
		target := req.URI + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		return http.StatusMovedPermanently
	case strings.HasSuffix(req.URI, "/"):
		syscall.Close(fd)
		return http.StatusNotFound
	case !fi.Mode().IsRegular():
		syscall.Close(fd)
		return http.StatusForbidden // a FIFO, socket or device is never read
	case post:
		syscall.Close(fd)
		return http.StatusMethodNotAllowed
	}
	return serveFile(w, r, name, fd, &fi, &req, false)
}

// GzipStatic is gzip_static: off, on (for clients that accept gzip) or always (for every client; gunzip
// decompresses the file for those that do not take gzip).
type GzipStatic uint8

const (
	GzipStaticOff GzipStatic = iota
	GzipStaticOn
	GzipStaticAlways
)

// precompressed answers with name.gz in the file's place, as nginx's gzip_static: when the client accepts gzip
// (or always) and it is a regular file, whether or not name exists. A .gz that cannot be opened (under disable_symlinks: a
// link) is passed over as nginx does, and name answers. ok false means name itself is to be served.
func precompressed(w http.ResponseWriter, r *http.Request, name string, req *Request) (status int, ok bool) {
	if req.GzipStatic == GzipStaticOff || strings.HasSuffix(req.URI, "/") ||
		req.GzipStatic == GzipStaticOn && !compress.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		return 0, false
	}
	var fi statInfo
	fd, err := req.openStat(name+".gz", &fi)
	switch {
	case err != nil:
		return 0, false
	case !fi.Mode().IsRegular():
		syscall.Close(fd)
		return 0, false
	}
	return serveFile(w, r, name, fd, &fi, req, true), true
}

// SmallFile is the size up to which a file is read whole into a buffer (Request.Bufs) and written with the
// headers in one system call; larger files go through sendfile.
const SmallFile = 64 << 10

// openStat opens name for reading without blocking (a FIFO does not hang the request) and without registering
// it with the network poller, and stats the open file: two system calls where os.Stat+os.Open take four.
// Under disable_symlinks a symbolic link below Root fails with ELOOP.
func (req *Request) openStat(name string, fi *statInfo) (int, error) {
	const flags = syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	var fd int
	var err error
	if req.NoSymlinks {
		fd, err = openBelow(req.Root, name, flags)
	} else {
		fd, err = open(name, flags)
	}
	if err != nil {
		return -1, err
	}
	if err := syscall.Fstat(fd, &fi.st); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// open is syscall.Open with the C string of a usual path on the stack instead of the heap.
func open(name string, flags int) (int, error) {
	var cpath [256]byte
	if len(name) >= len(cpath) || strings.IndexByte(name, 0) >= 0 {
		return syscall.Open(name, flags, 0) // a long path, or EINVAL
	}
	copy(cpath[:], name) // the rest is zero: NUL-terminated
	dirfd := -0x64       // AT_FDCWD: name is absolute or relative to the working directory, as syscall.Open's
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&cpath[0])), uintptr(flags), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// openBelow opens name, a path below root, with no symbolic link between root and the file (ELOOP; a name
// outside root gets EXDEV): one openat2 from root that resolves no link, so none can be swapped in between a
// check and the open. Without openat2 (Linux before 5.6, or a seccomp filter) the links are checked first.
func openBelow(root, name string, flags int) (int, error) {
	rel, ok := strings.CutPrefix(name, root)
	if !ok || rel != "" && rel[0] != '/' {
		return -1, syscall.EXDEV
	}
	if rel = strings.TrimLeft(rel, "/"); rel == "" {
		// a regex location's alias names the file itself: it may not be a link either (ELOOP)
		return open(name, flags|syscall.O_NOFOLLOW)
	}
	dir, err := open(root+"/", unix.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Openat2(dir, rel, &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH})
	syscall.Close(dir)
	if err == unix.ENOSYS || err == unix.EPERM {
		if !noLinks(root, name) {
			return -1, syscall.ELOOP
		}
		return open(name, flags)
	}
	return fd, err
}

// statInfo is what an fstat tells of an open file, with os.FileInfo's accessors for the parts used.
type statInfo struct {
	st syscall.Stat_t
}

func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.st.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (s *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	}
	return m
}

// FindIndex returns the first index name that exists as a file in dir; an absolute name (the last resort of
// `index a.html /fallback.php`) is returned as it is, for the caller's internal redirect.
func FindIndex(dir string, names []string) string {
	for _, idx := range names {
		if strings.HasPrefix(idx, "/") {
			return idx
		}
		if isDir, ok := Exists("", filepath.Join(dir, idx), false); ok && !isDir {
			return idx
		}
	}
	return ""
}

// Exists reports whether name exists and whether it is a directory, as try_files tests its arguments: under
// disable_symlinks (noSymlinks) a name reached through a symbolic link below root does not exist, as in nginx.
func Exists(root, name string, noSymlinks bool) (isDir, ok bool) {
	var st syscall.Stat_t
	if noSymlinks {
		fd, err := openBelow(root, name, unix.O_PATH|syscall.O_CLOEXEC)
		if err != nil {
			return false, false
		}
		err = syscall.Fstat(fd, &st)
		syscall.Close(fd)
		if err != nil || st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return false, false // O_PATH|O_NOFOLLOW (a regex location's alias) opens a link itself
		}
	} else if syscall.Stat(name, &st) != nil {
		return false, false
	}
	return st.Mode&syscall.S_IFMT == syscall.S_IFDIR, true
}

// Hidden reports whether a URI has a segment starting with "." (other than /.well-known/).
func Hidden(uri string) bool {
	for i := 0; i < len(uri); i++ {
		if uri[i] == '.' && (i == 0 || uri[i-1] == '/') {
			rest := uri[i:]
			if strings.HasPrefix(rest, ".well-known") && (len(rest) == len(".well-known") || rest[len(".well-known")] == '/') {
				continue
			}
			return true
		}
	}
	return false
}

// noLinks reports whether no component of name below root is a symbolic link (openBelow without openat2).
func noLinks(root, name string) bool {
	rel, err := filepath.Rel(root, name)
	if err != nil || strings.HasPrefix(rel, "..") {
		return false
	}
	if rel == "." {
		fi, err := os.Lstat(name) // the root is the file (a regex location's alias): not a link either
		return err != nil || fi.Mode()&fs.ModeSymlink == 0
	}
	p := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return true // a missing file is answered by the caller's stat
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return false
		}
	}
	return true
}

// serveFile answers with the open regular file fd (name, or with gzipped its name.gz) and closes it. A
// request with conditional headers goes through nginx's not_modified and range filters first: 304, 412
// (returned, for the caller's error_page handling), 206 with one range or multipart/byteranges, or 416
// (returned, with Content-Range set).
func serveFile(w http.ResponseWriter, r *http.Request, name string, fd int, fi *statInfo, req *Request, gzipped bool) int {
	body := fileBody{fd: fd, name: name, bufs: req.Bufs}
	defer body.close()
	h := w.Header()
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	ct := req.Types[ext]
	if ct == "" {
		ct = req.DefaultType
	}
	// the validators and length formatted once per file version (or per request without req.Validators)
	size, mtime := fi.Size(), fi.ModTime()
	var vs *validators
	if req.Validators != nil {
		vs = req.Validators.get(mtime, size, ct)
	} else {
		vs = newValidators(mtime, size, ct)
	}
	etag := ""
	if req.ETag {
		etag = vs.etag[0]
	}
	cond := !req.NoConditions && isConditional(r.Header)
	var rs []byteRange
	if cond {
		switch status := req.precondition(r.Header, mtime.Unix(), etag); status {
		case http.StatusPreconditionFailed:
			return status
		case http.StatusNotModified:
			// as nginx: the validators, no type, length or coding
			if gzipped {
				h.Add("Vary", "Accept-Encoding")
			}
			h["Last-Modified"] = vs.lastModified
			if req.ETag {
				h["Etag"] = vs.etag
			}
			delete(h, "Content-Encoding")
			w.WriteHeader(http.StatusNotModified)
			return 0
		}
		if req.MaxRanges >= 0 && !req.compressed(r, h, gzipped, size, vs.ctype[0]) && !req.rewritten(h, size, vs.ctype[0]) && !req.inflated(r, h, gzipped) {
			limit := req.MaxRanges
			if limit == 0 {
				limit = math.MaxInt32 // nginx's default
			}
			var res int
			if rs, res = ranges(r.Header, size, mtime.Unix(), etag, limit); res == rangeNotSatisfiable {
				// nothing else is set: an error_page answering the 416 sets its own headers
				h["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
				return http.StatusRequestedRangeNotSatisfiable
			}
		}
	}
	if size <= SmallFile && size > 0 && r.Method != http.MethodHead && !body.load(size) {
		return http.StatusInternalServerError // (before any header is set: the 500 page is the answer)
	}
	if gzipped {
		h.Add("Vary", "Accept-Encoding")
		h["Content-Encoding"] = []string{"gzip"}
	}
	if _, preset := h["Content-Type"]; !preset {
		// (an X-Accel-Redirect keeps the application's type, as in nginx)
		h["Content-Type"] = vs.ctype
	}
	if mtime.Unix() > 0 {
		h["Last-Modified"] = vs.lastModified
	}
	if req.ETag {
		h["Etag"] = vs.etag
	}
	if rs != nil {
		return partial(w, r, &body, rs, size, req.Parts)
	}
	if req.MaxRanges >= 0 && !req.rewritten(h, size, vs.ctype[0]) && !req.inflated(r, h, gzipped) {
		h["Accept-Ranges"] = vs.acceptRanges
	}
	h["Content-Length"] = vs.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		if !body.copy(w, 0, size) {
			return http.StatusInternalServerError
		}
	}
	return 0
}

// rewritten reports whether sub_filter will rewrite this file's 200, or the charset filter change its
// length: it is sent whole and offers no ranges, as
// nginx's range filter does for a response that has lost its length.
func (req *Request) rewritten(h http.Header, size int64, ctype string) bool {
	return req.Sub != nil && req.Sub.Takes(presetType(h, ctype), size) ||
		req.Charset != nil && req.Charset.Lengthens(presetType(h, ctype), req.CharsetVars)
}

// inflated reports whether gunzip will decompress this .gz of gzip_static's for a client that does not take
// gzip: it is sent whole and offers no ranges (ranges of its compressed bytes cannot be decompressed), as
// nginx's gunzip clears the length before its range filter runs.
func (req *Request) inflated(r *http.Request, h http.Header, gzipped bool) bool {
	return gzipped && req.Gunzip != nil && !req.Gunzip.Test.Accepts(r, h)
}

// presetType is the type the file goes out with: one set before (an X-Accel-Redirect keeps the
// application's), else the file's own.
func presetType(h http.Header, ctype string) string {
	if ct, preset := h["Content-Type"]; preset && len(ct) > 0 {
		return ct[0]
	}
	return ctype
}

// compressed reports whether the gzip filter will compress this file's 200 (not a .gz of gzip_static's).
func (req *Request) compressed(r *http.Request, h http.Header, gzipped bool, size int64, ctype string) bool {
	if req.Gzip == nil || gzipped {
		return false
	}
	return req.Gzip.Fits(presetType(h, ctype), size) && req.Gzip.Accepts(r, h)
}

// partial answers 206 with the ranges rs of the file: one as the body with Content-Range, several as
// multipart/byteranges with nginx's layout and a boundary numbered from parts.
func partial(w http.ResponseWriter, r *http.Request, body *fileBody, rs []byteRange, size int64, parts *atomic.Uint64) int {
	h := w.Header()
	var buf [64]byte
	if len(rs) == 1 {
		h["Content-Range"] = []string{string(contentRange(buf[:0], rs[0], size))}
		h["Content-Length"] = []string{strconv.FormatInt(rs[0].end-rs[0].start, 10)}
		w.WriteHeader(http.StatusPartialContent)
		if r.Method != http.MethodHead {
			body.copy(w, rs[0].start, rs[0].end-rs[0].start)
		}
		return 0
	}
	var n uint64
	if parts != nil {
		n = parts.Add(1)
	}
	boundary := fmt.Sprintf("%020d", n)
	ctype := h.Get("Content-Type")
	heads := make([]string, len(rs))
	length := int64(len("\r\n--") + len(boundary) + len("--\r\n"))
	for i, rg := range rs {
		heads[i] = "\r\n--" + boundary + "\r\nContent-Type: " + ctype + "\r\nContent-Range: " + string(contentRange(buf[:0], rg, size)) + "\r\n\r\n"
		length += int64(len(heads[i])) + rg.end - rg.start
	}
	h["Content-Type"] = []string{"multipart/byteranges; boundary=" + boundary}
	h["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return 0
	}
	for i, rg := range rs {
		if _, err := io.WriteString(w, heads[i]); err != nil {
			return 0
		}
		if !body.copy(w, rg.start, rg.end-rg.start) {
			return 0
		}
	}
	io.WriteString(w, "\r\n--"+boundary+"--\r\n")
	return 0
}

// fileBody writes sections of an open file: a small file is read whole into a buffer borrowed from bufs
// first (load: before the head goes out, so a failed read can still be a 500, and its parts leave with the
// head in one system call), a larger one goes section by section through the connection's ReadFrom, which
// uses sendfile on plain TCP.
type fileBody struct {
	fd   int
	name string
	f    *os.File // made for the first large section; it owns fd from then on
	bufs *sync.Pool
	data []byte  // the whole small file, once loaded
	bp   *[]byte // data's buffer, from bufs
}

// load reads a file of size ≤ SmallFile whole; false when it could not be read (it shrank, or a read failed).
func (b *fileBody) load(size int64) bool {
	data, bp, ok := readSmall(b.fd, 0, size, b.bufs)
	b.data, b.bp = data, bp
	return ok
}

// copy writes n bytes from off (from memory once loaded); false when the file could not be read before
// anything was written.
func (b *fileBody) copy(w io.Writer, off, n int64) bool {
	if b.data != nil || n == 0 {
		w.Write(b.data[off : off+n])
		return true
	}
	if b.f == nil {
		b.f = os.NewFile(uintptr(b.fd), b.name)
	}
	if _, err := b.f.Seek(off, io.SeekStart); err != nil {
		return false
	}
	io.CopyN(w, b.f, n)
	return true
}

func (b *fileBody) close() {
	if b.bp != nil {
		b.bufs.Put(b.bp)
	}
	if b.f != nil {
		b.f.Close()
		return
	}
	syscall.Close(b.fd)
}

// readSmall reads n ≤ SmallFile bytes of fd from off. The bytes are in a buffer borrowed from bufs when it is
// set: bp, to be put back once they are written.
func readSmall(fd int, off, n int64, bufs *sync.Pool) (data []byte, bp *[]byte, ok bool) {
	var buf []byte
	if bufs != nil {
		bp = bufs.Get().(*[]byte)
		buf = *bp
	} else {
		buf = make([]byte, n)
	}
	got, err := syscall.Pread(fd, buf[:n], off)
	for err == syscall.EINTR {
		got, err = syscall.Pread(fd, buf[:n], off)
	}
	return buf[:max(got, 0)], bp, err == nil && int64(got) == n
}

// appendETag appends nginx's entity tag: hex modification time and size.
func appendETag(dst []byte, mtime time.Time, size int64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendInt(dst, mtime.Unix(), 16)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, size, 16)
	return append(dst, '"')
}

// appendHTTPTime appends t in HTTP's date format (http.TimeFormat), without time.Format's layout parsing.
func appendHTTPTime(dst []byte, t time.Time) []byte {
	const days, months = "SunMonTueWedThuFriSat", "JanFebMarAprMayJunJulAugSepOctNovDec"
	t = t.UTC()
	y, mo, d := t.Date()
	hh, mm, ss := t.Clock()
	wd := int(t.Weekday())
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, http.TimeFormat)
	}
	dst = append(dst, days[3*wd:3*wd+3]...)
	dst = append(dst, ',', ' ', byte('0'+d/10), byte('0'+d%10), ' ')
	dst = append(dst, months[3*(mo-1):3*mo]...)
	dst = append(dst, ' ', byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), ' ')
	dst = append(dst, byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10), ':', byte('0'+ss/10), byte('0'+ss%10))
	return append(dst, " GMT"...)
}
