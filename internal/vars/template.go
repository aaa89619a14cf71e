package vars

import (
	"fmt"
	"regexp"
	"strings"
)

// Template is a compiled string with variables: literal parts and variable references, evaluated per request
// without re-parsing.
type Template struct {
	src   string
	parts []part
}

type part struct {
	lit string
	v   *Var
}

// Compile compiles "$name", "${name}" and "$1" references against t. An unknown variable is an error with
// nginx's wording.
func Compile(src string, t *Table) (*Template, error) {
	tp := &Template{src: src}
	var lit strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '$' || i == len(src)-1 {
			lit.WriteByte(c)
			continue
		}
		var name string
		if src[i+1] == '{' {
			end := strings.IndexByte(src[i+2:], '}')
			if end < 0 {
				return nil, fmt.Errorf("the closing bracket in %q variable is missing", src[i+2:])
			}
			name = src[i+2 : i+2+end]
			i += 2 + end
		} else {
			j := i + 1
			if src[j] >= '0' && src[j] <= '9' {
				j++
			} else {
				for j < len(src) && (src[j] == '_' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
					j++
				}
			}
			if j == i+1 {
				lit.WriteByte(c)
				continue
			}
			name = src[i+1 : j]
			i = j - 1
		}
		v, ok := t.Lookup(name)
		if !ok {
			// a named capture of a regex in the configuration: resolved from the request's captures
			if capName.MatchString(name) && t.hasCaptureName(name) {
				v = Var{k: kNamedCapture, name: name}
			} else {
				return nil, fmt.Errorf("unknown %q variable", name)
			}
		}
		if lit.Len() > 0 {
			tp.parts = append(tp.parts, part{lit: lit.String()})
			lit.Reset()
		}
		vv := v
		tp.parts = append(tp.parts, part{v: &vv})
	}
	if lit.Len() > 0 {
		tp.parts = append(tp.parts, part{lit: lit.String()})
	}
	return tp, nil
}

var capName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// hasCaptureName reports whether a regex seen in the configuration defines a named capture (see AddCaptureNames).
func (t *Table) hasCaptureName(name string) bool {
	return t.captures[name]
}

// AddCaptureNames records the named groups of a configuration regex so templates may use them as variables.
func (t *Table) AddCaptureNames(re *regexp.Regexp) {
	if t.captures == nil {
		t.captures = map[string]bool{}
	}
	for _, n := range re.SubexpNames() {
		if n != "" {
			t.captures[n] = true
		}
	}
}

// IsConst reports whether the template has no variables.
func (tp *Template) IsConst() bool {
	for _, p := range tp.parts {
		if p.v != nil {
			return false
		}
	}
	return true
}

// String returns the source text.
func (tp *Template) String() string { return tp.src }

// Append appends the value for r to dst.
func (tp *Template) Append(dst []byte, r *Request) []byte {
	for _, p := range tp.parts {
		if p.v == nil {
			dst = append(dst, p.lit...)
		} else {
			dst = r.appendVar(dst, *p.v)
		}
	}
	return dst
}

// Eval returns the value for r.
func (tp *Template) Eval(r *Request) string {
	if len(tp.parts) == 1 && tp.parts[0].v == nil {
		return tp.parts[0].lit
	}
	return string(tp.Append(nil, r))
}

// AppendEscaped appends the value with each variable's value escaped for a log format.
func (tp *Template) AppendEscaped(dst []byte, r *Request, esc Escape) []byte {
	for _, p := range tp.parts {
		if p.v == nil {
			dst = append(dst, p.lit...)
			continue
		}
		start := len(dst)
		dst = r.appendVar(dst, *p.v)
		if len(dst) == start {
			dst = append(dst, '-') // nginx logs an empty or missing value as "-"
			continue
		}
		if esc == EscapeNone {
			continue
		}
		val := string(dst[start:])
		dst = dst[:start]
		dst = escape(dst, val, esc)
	}
	return dst
}

const hexDigits = "0123456789ABCDEF"

func escape(dst []byte, v string, esc Escape) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch esc {
		case EscapeJSON:
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
		default:
			if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
				dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				dst = append(dst, c)
			}
		}
	}
	return dst
}
