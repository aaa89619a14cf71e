package vars

import (
	"errors"
	"fmt"
	"strings"
)

// Template is a compiled string with variables, e.g. "$scheme://$host$request_uri" or "${host}x". It is
// immutable and safe for concurrent use; each evaluation reads one Request.
type Template struct {
	src    string
	parts  []part
	single bool // exactly one variable and no literal text
}

// part is literal text followed by an optional variable.
type part struct {
	lit    string
	v      Var
	hasVar bool
}

var errInvalidName = errors.New("invalid variable name")

// Compile compiles src against t. References are `$name`, `${name}` (for a name followed by letters) and `$1`
// (one digit: "$10" is $1 then "0"). A `$` at the very end is literal text. Errors use nginx's wording:
// `unknown "foo" variable`, `invalid variable name`, `the closing bracket in "foo" variable is missing`.
func Compile(src string, t *Table) (*Template, error) {
	tp := &Template{src: src}
	lit := 0 // start of pending literal text
	for i := 0; i < len(src); i++ {
		if src[i] != '$' || i == len(src)-1 {
			continue
		}
		text := src[lit:i]
		i++
		var name string
		switch c := src[i]; {
		case c >= '0' && c <= '9':
			name = src[i : i+1]
			i++
		case c == '{':
			i++
			start := i
			for i < len(src) && isNameChar(src[i]) {
				i++
			}
			if i == len(src) && start == i {
				return nil, errInvalidName
			}
			if i == len(src) || src[i] != '}' {
				return nil, fmt.Errorf("the closing bracket in %q variable is missing", src[start:i])
			}
			name = src[start:i]
			i++
		default:
			start := i
			for i < len(src) && isNameChar(src[i]) {
				i++
			}
			name = src[start:i]
		}
		if name == "" {
			return nil, errInvalidName
		}
		v, ok := t.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("unknown %q variable", strings.ToLower(name))
		}
		tp.parts = append(tp.parts, part{lit: text, v: v, hasVar: true})
		lit = i
		i-- // the loop's i++ resumes at src[lit]
	}
	if lit < len(src) {
		tp.parts = append(tp.parts, part{lit: src[lit:]})
	}
	tp.single = len(tp.parts) == 1 && tp.parts[0].hasVar && tp.parts[0].lit == ""
	return tp, nil
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// IsConst reports whether the template has no variables, so its value is String().
func (tp *Template) IsConst() bool {
	for i := range tp.parts {
		if tp.parts[i].hasVar {
			return false
		}
	}
	return true
}

// String returns the template's source text.
func (tp *Template) String() string { return tp.src }

// Append appends the template's value for r to dst and returns the extended buffer.
func (tp *Template) Append(dst []byte, r *Request) []byte {
	for i := range tp.parts {
		p := &tp.parts[i]
		dst = append(dst, p.lit...)
		if p.hasVar {
			dst, _ = r.appendVar(dst, &p.v)
		}
	}
	return dst
}

// Eval returns the template's value for r. A constant template, or one that is a single string-valued variable
// such as $http_upgrade, is returned without allocating.
func (tp *Template) Eval(r *Request) string {
	switch {
	case len(tp.parts) == 0:
		return ""
	case len(tp.parts) == 1 && !tp.parts[0].hasVar:
		return tp.parts[0].lit
	case tp.single:
		if s, _, ok := r.str(&tp.parts[0].v); ok {
			return s
		}
	}
	buf := r.scratch
	if buf == nil {
		buf = make([]byte, 0, 128)
	}
	r.scratch = nil // a nested evaluation (a map's value) must not append into the buffer in use
	buf = tp.Append(buf[:0], r)
	s := string(buf)
	r.scratch = buf[:0]
	return s
}

// Escape selects how AppendEscaped escapes variable values, as log_format's escape= parameter.
type Escape int

const (
	// EscapeDefault writes '"', '\' and bytes below 32 or above 126 as \xHH, and a variable that is not found
	// (an absent header, cookie or argument, no remote user, no upstream...) as "-".
	EscapeDefault Escape = iota
	// EscapeJSON escapes for a JSON string: \" \\ \n \r \t \b \f and \u00HH; a missing variable writes nothing.
	EscapeJSON
	// EscapeNone writes values as they are; a missing variable writes nothing.
	EscapeNone
)

// AppendEscaped is for log_format escape=default|json|none: each variable's value (not the literal text) is
// escaped. It allocates no more than Append does.
func (tp *Template) AppendEscaped(dst []byte, r *Request, esc Escape) []byte {
	for i := range tp.parts {
		p := &tp.parts[i]
		dst = append(dst, p.lit...)
		if !p.hasVar {
			continue
		}
		n := len(dst)
		var found bool
		dst, found = r.appendVar(dst, &p.v)
		if !found {
			dst = dst[:n]
			if esc == EscapeDefault {
				dst = append(dst, '-')
			}
			continue
		}
		switch esc {
		case EscapeDefault:
			dst = escapeDefault(dst, n)
		case EscapeJSON:
			dst = escapeJSON(dst, n)
		}
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// escapeExtra holds, per byte, the extra output bytes each escape mode needs: [0] default, [1] JSON.
// Read-only.
var escapeExtra = func() (t [2][256]uint8) {
	for c := range 256 {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t[0][c] = 3
		}
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			t[1][c] = 1
		case c < 0x20:
			t[1][c] = 5
		}
	}
	return t
}()

func needsDefaultEscape(c byte) bool { return escapeExtra[0][c] != 0 }

// escapeDefault escapes dst[n:] in place, growing dst, as nginx's ngx_http_log_escape.
func escapeDefault(dst []byte, n int) []byte {
	extra := 0
	for _, c := range dst[n:] {
		extra += int(escapeExtra[0][c])
	}
	if extra == 0 {
		return dst
	}
	end := len(dst)
	dst = append(dst, make([]byte, extra)...)
	w := len(dst)
	for j := end - 1; j >= n; j-- {
		c := dst[j]
		if needsDefaultEscape(c) {
			w -= 4
			dst[w], dst[w+1], dst[w+2], dst[w+3] = '\\', 'x', upperHex[c>>4], upperHex[c&0xf]
		} else {
			w--
			dst[w] = c
		}
	}
	return dst
}

// jsonEscapeLen returns the extra bytes escaping c for JSON needs.
func jsonEscapeLen(c byte) int { return int(escapeExtra[1][c]) }

// escapeJSON escapes dst[n:] in place, growing dst, as nginx's ngx_escape_json: bytes >= 0x80 pass through.
func escapeJSON(dst []byte, n int) []byte {
	extra := 0
	for _, c := range dst[n:] {
		extra += jsonEscapeLen(c)
	}
	if extra == 0 {
		return dst
	}
	end := len(dst)
	dst = append(dst, make([]byte, extra)...)
	w := len(dst)
	for j := end - 1; j >= n; j-- {
		c := dst[j]
		switch jsonEscapeLen(c) {
		case 0:
			w--
			dst[w] = c
		case 1:
			e := c
			switch c {
			case '\n':
				e = 'n'
			case '\r':
				e = 'r'
			case '\t':
				e = 't'
			case '\b':
				e = 'b'
			case '\f':
				e = 'f'
			}
			w -= 2
			dst[w], dst[w+1] = '\\', e
		default:
			w -= 6
			copy(dst[w:], `\u00`)
			dst[w+4], dst[w+5] = upperHex[c>>4], upperHex[c&0xf]
		}
	}
	return dst
}
