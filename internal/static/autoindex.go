package static

import (
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-proxy/sluice/internal/route"
)

// Listing is how autoindex lists a directory: nginx's autoindex_format, autoindex_exact_size and
// autoindex_localtime.
type Listing struct {
	Format    string // "html" (""), "json", "jsonp", "xml"
	Rounded   bool   // autoindex_exact_size off: sizes in K, M, G
	Localtime bool   // autoindex_localtime on: times in the server's zone
}

// entry is one listed name.
type entry struct {
	name  string
	dir   bool
	other bool // neither file nor directory (json's "other")
	size  int64
	mtime time.Time
}

// kind is the entry's type as nginx's JSON and XML listings name it.
func (e *entry) kind() string {
	switch {
	case e.dir:
		return "directory"
	case e.other:
		return "other"
	}
	return "file"
}

// listing writes nginx's autoindex of dir (autoindex on): names starting with "." are left out (unless
// serve_dotfiles), directories first, then byte order; a link is listed as what it points to and a broken
// one not at all. The HTML, JSON, JSONP and XML forms are nginx 1.22's byte for byte: names are measured in
// bytes, as nginx does without `charset utf-8`, and one over 50 is cut to 47 and "..>" in HTML, at a
// character boundary where nginx may cut inside a character.
func listing(w http.ResponseWriter, r *http.Request, dir string, req *Request) int {
	des, err := os.ReadDir(dir)
	if err != nil {
		return http.StatusForbidden
	}
	callback := ""
	if req.Listing.Format == "jsonp" {
		callback = r.URL.Query().Get("callback")
		if len(callback) > 128 || strings.TrimLeft(callback, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != "" {
			return http.StatusBadRequest
		}
	}
	entries := make([]entry, 0, len(des))
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, ".") && !req.Dotfiles {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, n)) // a link lists as its target
		if err != nil {
			continue
		}
		entries = append(entries, entry{name: n, dir: fi.IsDir(), other: !fi.IsDir() && !fi.Mode().IsRegular(), size: fi.Size(), mtime: fi.ModTime()})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].dir != entries[j].dir {
			return entries[i].dir
		}
		return entries[i].name < entries[j].name
	})
	var b []byte
	ctype := "text/html"
	switch req.Listing.Format {
	case "json", "jsonp":
		ctype = "application/json"
		if callback != "" {
			ctype = "application/javascript"
			b = append(b, "/* callback */\r\n"+callback+"("...)
		}
		b = listJSON(b, entries)
		if callback != "" {
			b = append(b, ");"...)
		}
	case "xml":
		ctype = "text/xml; charset=utf-8"
		b = listXML(b, entries, req.Listing.Localtime)
	default:
		b = listHTML(b, req.URI, entries, req.Listing)
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	return 0
}

// nameLen is nginx's NGX_HTTP_AUTOINDEX_NAME_LEN: the width of the name column.
const nameLen = 50

func listHTML(b []byte, uri string, entries []entry, l Listing) []byte {
	title := appendHTMLEscaped(nil, uri)
	b = append(b, "<html>\r\n<head><title>Index of "...)
	b = append(b, title...)
	b = append(b, "</title></head>\r\n<body>\r\n<h1>Index of "...)
	b = append(b, title...)
	b = append(b, "</h1><hr><pre><a href=\"../\">../</a>\r\n"...)
	for _, e := range entries {
		b = append(b, `<a href="`...)
		b = append(b, route.Escape(e.name, uriComponent)...)
		if e.dir {
			b = append(b, '/')
		}
		b = append(b, `">`...)
		n := len(e.name) // bytes, as nginx without `charset utf-8`
		if n > nameLen {
			b = appendHTMLEscaped(b, cutUTF8(e.name, nameLen-3))
			b = append(b, "..&gt;</a>"...)
		} else {
			b = appendHTMLEscaped(b, e.name)
			if e.dir && nameLen-n > 0 {
				b = append(b, '/')
				n++
			}
			b = append(b, "</a>"...)
			for range nameLen - n {
				b = append(b, ' ')
			}
		}
		b = append(b, ' ')
		t := e.mtime.UTC()
		if l.Localtime {
			t = e.mtime.Local()
		}
		b = t.AppendFormat(b, "02-Jan-2006 15:04 ")
		switch {
		case e.dir && l.Rounded:
			b = append(b, "      -"...)
		case e.dir:
			b = append(b, "                  -"...)
		case l.Rounded:
			b = appendRoundedSize(b, e.size)
		default:
			b = appendPadded(b, strconv.FormatInt(e.size, 10), 19)
		}
		b = append(b, "\r\n"...)
	}
	return append(b, "</pre><hr></body>\r\n</html>\r\n"...)
}

// appendRoundedSize is nginx's autoindex_exact_size off: K above 9999 bytes, M and G above their units, each
// rounded half up.
func appendRoundedSize(b []byte, size int64) []byte {
	const k, m, g = 1 << 10, 1 << 20, 1 << 30
	var n int64
	var scale byte
	switch {
	case size > g-1:
		n, scale = size/g, 'G'
		if size%g > g/2-1 {
			n++
		}
	case size > m-1:
		n, scale = size/m, 'M'
		if size%m > m/2-1 {
			n++
		}
	case size > 9999:
		n, scale = size/k, 'K'
		if size%k > 511 {
			n++
		}
	default:
		return appendPadded(append(b, ' '), strconv.FormatInt(size, 10), 6)
	}
	return append(appendPadded(b, strconv.FormatInt(n, 10), 6), scale)
}

func appendPadded(b []byte, s string, width int) []byte {
	for range width - len(s) {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func listJSON(b []byte, entries []entry) []byte {
	b = append(b, "[\r\n"...)
	for i, e := range entries {
		b = append(b, `{ "name":"`...)
		b = appendJSONEscaped(b, e.name)
		kind := e.kind()
		b = append(b, `", "type":"`+kind+`", "mtime":"`...)
		b = appendHTTPTime(b, e.mtime)
		b = append(b, '"')
		if !e.dir && !e.other {
			b = append(b, `, "size":`...)
			b = strconv.AppendInt(b, e.size, 10)
		}
		b = append(b, " }"...)
		if i < len(entries)-1 {
			b = append(b, ',')
		}
		b = append(b, "\r\n"...)
	}
	return append(b, ']')
}

func listXML(b []byte, entries []entry, localtime bool) []byte {
	b = append(b, "<?xml version=\"1.0\"?>\r\n<list>\r\n"...)
	for _, e := range entries {
		kind := e.kind()
		b = append(b, "<"+kind+` mtime="`...)
		if localtime {
			b = e.mtime.Local().AppendFormat(b, "2006-01-02T15:04:05-07:00")
		} else {
			b = e.mtime.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
		}
		b = append(b, '"')
		if kind == "file" {
			b = append(b, ` size="`...)
			b = strconv.AppendInt(b, e.size, 10)
			b = append(b, '"')
		}
		b = append(b, '>')
		b = appendHTMLEscaped(b, e.name)
		b = append(b, "</"+kind+">\r\n"...)
	}
	return append(b, "</list>\r\n"...)
}

// uriComponent marks the bytes nginx's NGX_ESCAPE_URI_COMPONENT escapes in a listing's links: all but letters,
// digits, "-", ".", "_" and "~" (read only).
var uriComponent = route.EscapeSet("!\"#$%&'()*+,/:;<=>?@[\\]^`{|}")

// appendHTMLEscaped escapes as nginx's ngx_escape_html: <, >, & and " only.
func appendHTMLEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '"':
			b = append(b, "&quot;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendJSONEscaped escapes as nginx's ngx_escape_json: quote, backslash, and control characters.
func appendJSONEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c == '\b':
			b = append(b, `\b`...)
		case c == '\f':
			b = append(b, `\f`...)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// cutUTF8 is s cut to at most n bytes, at a character boundary (nginx cuts at n bytes, even inside a
// character).
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
