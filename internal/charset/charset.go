// Package charset is nginx's charset filter: it names the charset of text responses in their Content-Type
// (charset, charset_types, override_charset, source_charset) and recodes bodies between two charsets that a
// charset_map relates, as the body streams.
package charset

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// Set is the charsets one http block names (in charset, source_charset and charset_map) and the maps between
// them. A charset a response names that is not in the set cannot be recoded, as in nginx.
type Set struct {
	names []string
	maps  map[[2]int]*Map // by (first, second) charset of the charset_map as written
}

// Map is one charset_map: the single-byte charset first named, and the second, either single-byte (a byte for
// a byte both ways) or utf-8 (a byte for a UTF-8 sequence, and back for the code points listed).
type Map struct {
	utf8      bool
	fwd, back [256]byte   // single-byte maps
	toUTF8    [256]string // utf-8 maps: each byte's sequence
	fromUTF8  map[rune]byte
}

// Add records name in the set (without case) and returns its index.
func (s *Set) Add(name string) int {
	if i := s.find(name); i >= 0 {
		return i
	}
	s.names = append(s.names, name)
	return len(s.names) - 1
}

// find returns name's index in the set, or -1.
func (s *Set) find(name string) int {
	for i, n := range s.names {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

func isUTF8(name string) bool { return strings.EqualFold(name, "utf-8") }

// NewMap starts the charset_map from src to dst, refusing what nginx refuses (and a map from utf-8, which
// nginx accepts but cannot use: write it the other way round).
func (s *Set) NewMap(src, dst string) (*Map, error) {
	a, b := s.Add(src), s.Add(dst)
	if a == b {
		return nil, fmt.Errorf("\"charset_map\" between the same charsets %q and %q", src, dst)
	}
	if isUTF8(src) {
		return nil, fmt.Errorf("\"charset_map\" from utf-8 is not supported: write it as \"charset_map %s utf-8\"", dst)
	}
	if s.maps[[2]int{a, b}] != nil || s.maps[[2]int{b, a}] != nil {
		return nil, fmt.Errorf("duplicate \"charset_map\" between %q and %q", src, dst)
	}
	m := &Map{utf8: isUTF8(dst)}
	for i := range 256 {
		c := byte('?')
		if i < 0x80 {
			c = byte(i)
		}
		m.fwd[i], m.back[i] = c, c
		m.toUTF8[i] = string(c)
	}
	if m.utf8 {
		m.fromUTF8 = map[rune]byte{}
	}
	if s.maps == nil {
		s.maps = map[[2]int]*Map{}
	}
	s.maps[[2]int{a, b}] = m
	return m, nil
}

// Line applies one line of a charset_map block: a hexadecimal byte of the first charset and its
// counterpart (a hexadecimal byte, or the hexadecimal bytes of a UTF-8 sequence of at most 3 bytes).
func (m *Map) Line(from, to string) error {
	src, err := strconv.ParseUint(from, 16, 8)
	if err != nil {
		return fmt.Errorf("invalid value %q", from)
	}
	if !m.utf8 {
		dst, err := strconv.ParseUint(to, 16, 8)
		if err != nil {
			return fmt.Errorf("invalid value %q", to)
		}
		m.fwd[src], m.back[dst] = byte(dst), byte(src)
		return nil
	}
	if len(to) > 6 || len(to) == 0 || len(to)%2 != 0 {
		return fmt.Errorf("invalid value %q", to)
	}
	seq := make([]byte, 0, 3)
	for i := 0; i < len(to); i += 2 {
		b, err := strconv.ParseUint(to[i:i+2], 16, 8)
		if err != nil {
			return fmt.Errorf("invalid value %q", to)
		}
		seq = append(seq, byte(b))
	}
	n, _ := decode(seq)
	if n > 0xffff {
		return fmt.Errorf("invalid value %q", to)
	}
	m.toUTF8[src] = string(seq)
	m.fromUTF8[rune(n)] = byte(src)
	return nil
}

// Name is a charset or source_charset value: off, a name, or a variable naming one.
type Name struct {
	Off  bool
	Text string
	Var  *vars.Template
}

func (n Name) value(v *vars.Request) string {
	if n.Var != nil {
		return n.Var.Eval(v)
	}
	return n.Text
}

// Filter is one level's charset settings, compiled.
type Filter struct {
	Set      *Set
	Charset  Name // charset
	Source   Name // source_charset
	Override bool // override_charset
	anyType  bool
	types    map[string]struct{}
}

// DefaultTypes is charset_types' default.
var DefaultTypes = []string{"text/html", "text/xml", "text/plain", "text/vnd.wap.wml", "application/javascript", "application/rss+xml"}

// New compiles a level's settings (types: charset_types, lower case or not).
func New(set *Set, dst, src Name, override bool, types []string) *Filter {
	f := &Filter{Set: set, Charset: dst, Source: src, Override: override, types: map[string]struct{}{}}
	for _, t := range types {
		if t == "*" {
			f.anyType = true
		}
		f.types[strings.ToLower(t)] = struct{}{}
	}
	return f
}

// Missing reports whether a configured pair of charsets needs a charset_map and has none (for the check at
// load): both are names (not variables, not off) and differ.
func (s *Set) Missing(dst, src Name) bool {
	if dst.Off || src.Off || dst.Var != nil || src.Var != nil {
		return false
	}
	a, b := s.find(src.Text), s.find(dst.Text)
	return a != b && s.recoding(a, b) == nil
}

// recoding returns how to recode from charset a to b, or nil without a map between them.
func (s *Set) recoding(a, b int) *recoding {
	if m := s.maps[[2]int{a, b}]; m != nil {
		if m.utf8 {
			return &recoding{kind: toUTF8, m: m}
		}
		return &recoding{kind: byteToByte, table: &m.fwd}
	}
	if m := s.maps[[2]int{b, a}]; m != nil {
		if m.utf8 {
			return &recoding{kind: fromUTF8, m: m}
		}
		return &recoding{kind: byteToByte, table: &m.back}
	}
	return nil
}

// Header is nginx's charset header filter for a main request's response with status code and header h; accel
// is the upstream's X-Accel-Charset ("" when none or ignored), out where a recoded body goes. It rewrites
// Content-Type (adding, replacing or keeping "; charset=") and returns the recoder the body goes through (nil:
// none; then a response that needed one passes unchanged) and an error to log when the response names a
// charset it cannot be recoded from or to.
func (f *Filter) Header(code int, h http.Header, accel string, v *vars.Request, out io.Writer) (*Recoder, error) {
	ct := ""
	if cts := h["Content-Type"]; len(cts) > 0 {
		ct = cts[0]
	}
	encoded := false
	if ce := h["Content-Encoding"]; len(ce) > 0 && ce[0] != "" {
		encoded = true
	}
	typ, r, err := f.decide(code, ct, encoded, accel, v)
	if typ != ct {
		h["Content-Type"] = []string{typ}
	}
	if r == nil {
		return nil, err
	}
	if r.kind != byteToByte {
		delete(h, "Content-Length")
	}
	return &Recoder{r: *r, out: out}, nil
}

// Lengthens reports whether a file of type ctype (a static 200) will be recoded to or from utf-8, which
// changes its length: it is then sent whole, as nginx's range filter sees no length.
func (f *Filter) Lengthens(ctype string, v *vars.Request) bool {
	_, r, _ := f.decide(http.StatusOK, ctype, false, "", v)
	return r != nil && r.kind != byteToByte
}

// decide is Header's logic: the Content-Type the response gets, and how the body is recoded.
func (f *Filter) decide(code int, ct string, encoded bool, accel string, v *vars.Request) (string, *recoding, error) {
	if ct == "" {
		return ct, nil, nil
	}
	typeLen, cs := split(ct)
	var dst string
	var di int
	if accel != "" {
		if di = f.Set.find(accel); di < 0 {
			return ct, nil, fmt.Errorf("unknown charset %q to override", accel)
		}
		dst = accel
	} else {
		if f.Charset.Off {
			return ct, nil, nil
		}
		if cs != "" {
			if !f.Override {
				return ct, nil, nil
			}
		} else if !f.typeOK(ct[:typeLen]) {
			return ct, nil, nil
		}
		dst = f.Charset.value(v)
		di = f.Set.find(dst)
	}
	ctLen, charset := len(ct), cs
	set := func() {
		if code == http.StatusMovedPermanently || code == http.StatusFound {
			charset = "" // nginx: an old browser took a redirect's charset for its target's
			return
		}
		charset = dst
	}
	var rec *recoding
	var src string
	si := -1
	switch {
	case cs != "":
		src, si = cs, f.Set.find(cs)
	case f.Source.Off:
		set()
		goto write
	default:
		src = f.Source.value(v)
		si = f.Set.find(src)
	}
	switch {
	case di < 0 || si < 0:
		if si != di || !strings.EqualFold(src, dst) {
			return ct, nil, noMap(src, dst)
		}
		set()
	case si == di:
		ctLen = typeLen
		set()
	default:
		if encoded {
			return ct, nil, nil
		}
		if rec = f.Set.recoding(si, di); rec == nil {
			return ct, nil, noMap(src, dst)
		}
		ctLen = typeLen
		set()
	}
write:
	typ := ct[:ctLen]
	if ctLen == typeLen && charset != "" {
		typ += "; charset=" + charset
	}
	return typ, rec, nil
}

func noMap(src, dst string) error {
	return fmt.Errorf("no \"charset_map\" between the charsets %q and %q", src, dst)
}

// typeOK reports whether the media type t (the Content-Type before any charset parameter, other
// parameters included, as nginx compares it) is one of charset_types.
func (f *Filter) typeOK(t string) bool {
	if f.anyType {
		return true
	}
	if _, ok := f.types[t]; ok {
		return true
	}
	_, ok := f.types[strings.ToLower(t)]
	return ok
}

// split finds a Content-Type's charset parameter as nginx reads an upstream's: the first "; charset="
// (spaces allowed after the semicolon), whose value runs to the end of the field, less a quote at either end.
// typeLen is where the parameter's semicolon is (the whole length without one).
func split(ct string) (typeLen int, charset string) {
	for i := 0; i < len(ct); i++ {
		if ct[i] != ';' {
			continue
		}
		j := i + 1
		for j < len(ct) && ct[j] == ' ' {
			j++
		}
		if len(ct)-j < 8 || !strings.EqualFold(ct[j:j+8], "charset=") {
			continue
		}
		v := ct[j+8:]
		v = strings.TrimPrefix(v, "\"")
		v = strings.TrimSuffix(v, "\"")
		return i, v
	}
	return len(ct), ""
}
