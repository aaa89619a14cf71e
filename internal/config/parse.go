package config

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	crossplane "github.com/nginxinc/nginx-go-crossplane"

	"github.com/sluice-proxy/sluice/internal/vars"
)

//go:embed builtin
var builtinFS embed.FS

// builtinNames are the files `include` falls back to when the prefix has none.
var builtinNames = map[string]bool{"mime.types": true, "fastcgi_params": true, "fastcgi.conf": true, "uwsgi_params": true, "scgi_params": true, "proxy_params": true, "default.conf": true}

// Builtin returns the text of a built-in file (mime.types, fastcgi_params, fastcgi.conf, proxy_params, default.conf).
func Builtin(name string) ([]byte, bool) {
	if !builtinNames[name] {
		return nil, false
	}
	b, err := builtinFS.ReadFile("builtin/" + name)
	return b, err == nil
}

// Options control loading.
type Options struct {
	Prefix     string // prefix directory; relative paths in the config resolve against it
	Directives string // -g: extra main-context directives
	// Text, when set, is parsed instead of reading File (used for the built-in default configuration).
	Text []byte
}

// Directive is one directive as written, with its place.
type Directive struct {
	Name  string
	Args  []string
	Pos   Pos
	Block *Block // nil unless the directive has a { } block
}

// Block is the unexpanded body of a block directive.
type Block struct {
	raw     crossplane.Directives
	file    string
	configs []crossplane.Config // the payload the block came from, for its include indexes
}

func (d *Directive) errorf(format string, args ...any) *Error { return d.Pos.errorf(format, args...) }

const cmdlineName = "(command line)"

// Load reads, parses and validates the configuration in file. Nothing listens or opens until the returned
// Config is handed to the server, so a failing Load changes nothing.
func Load(file string, opt Options) (*Config, error) {
	prefix := opt.Prefix
	if prefix == "" {
		prefix = "."
	}
	prefix, _ = filepath.Abs(prefix)
	absFile := file
	if absFile != "" && !filepath.IsAbs(absFile) {
		absFile, _ = filepath.Abs(file)
	}
	if opt.Text != nil && absFile == "" {
		absFile = filepath.Join(prefix, "conf", "sluice.conf")
	}
	p := &parser{
		reg:     NewRegistry(),
		cfg:     &Config{File: absFile, Prefix: prefix},
		confDir: filepath.Dir(absFile),
		prefix:  prefix,
		tab:     vars.NewTable(),
		texts:   map[string][]byte{},
	}
	if opt.Text != nil {
		p.texts[absFile] = opt.Text
	}
	if opt.Directives != "" {
		p.texts[cmdlineName] = []byte(opt.Directives)
	}
	if err := p.run(absFile, opt.Directives != ""); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

type parser struct {
	reg     *Registry
	cfg     *Config
	confDir string
	prefix  string
	tab     *vars.Table
	texts   map[string][]byte // virtual files (built-in default, -g)
	read    []SourceFile

	http *HTTP
	srv  *Server
	loc  *Location
	conf *LocConf
	sc   *SrvConf
	ops  *[]Op
	ups  *Upstream
	strm *Stream       // the stream block being read
	ssrv *StreamServer // the stream server being read

	charsetErr error // the first level found recoding between charsets without a charset_map
}

func (p *parser) open(path string) (io.ReadCloser, error) {
	if t, ok := p.texts[path]; ok {
		p.read = append(p.read, SourceFile{Name: path, Text: t})
		return io.NopCloser(bytes.NewReader(t)), nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if t, ok := Builtin(filepath.Base(path)); ok {
			p.read = append(p.read, SourceFile{Name: path + " (built-in)", Text: t})
			return io.NopCloser(bytes.NewReader(t)), nil
		}
	}
	if err != nil {
		return nil, err
	}
	p.read = append(p.read, SourceFile{Name: path, Text: b})
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (p *parser) parseFile(name string) (payload *crossplane.Payload, err error) {
	// crossplane panics on `if ()` (its trimming of the parentheses slices out of range); a panic here would
	// take a running server down on reload, so it becomes nginx's error at the directive's line.
	defer func() {
		if r := recover(); r != nil {
			payload, err = nil, p.emptyIfError(name, r)
		}
	}()
	payload, err = crossplane.Parse(name, &crossplane.ParseOptions{
		Open:                      p.open,
		StopParsingOnError:        true,
		SkipDirectiveContextCheck: true,
		SkipDirectiveArgsCheck:    true,
	})
	if err != nil {
		return nil, convertParseError(err, name)
	}
	return payload, nil
}

// emptyIfError finds the `if ()` that made crossplane panic in the files read so far.
func (p *parser) emptyIfError(name string, r any) error {
	for i := len(p.read) - 1; i >= 0; i-- {
		f := p.read[i]
		var prev crossplane.NgxToken
		line := 0
		for tok := range crossplane.Lex(bytes.NewReader(f.Text)) { // read to the end: the lexer's goroutine must finish
			if line == 0 && prev.Value == "if" && !prev.IsQuoted && tok.Value == "()" && !tok.IsQuoted {
				line = tok.Line
			}
			prev = tok
		}
		if line > 0 {
			return &Error{File: strings.TrimSuffix(f.Name, " (built-in)"), Line: line, Msg: `invalid condition ")"`}
		}
	}
	return &Error{File: name, Msg: fmt.Sprintf("cannot parse the configuration: %v", r)}
}

func convertParseError(err error, file string) error {
	var pe *crossplane.ParseError
	if errors.As(err, &pe) {
		e := &Error{File: file, Msg: pe.What}
		if pe.File != nil {
			e.File = *pe.File
		}
		if pe.Line != nil {
			e.Line = *pe.Line
		}
		// crossplane appends " in file:line" to some messages; keep ours single.
		if i := strings.Index(e.Msg, " in "+e.File); i > 0 {
			e.Msg = e.Msg[:i]
		}
		if strings.Contains(e.Msg, "no such file") {
			e.Msg = strings.Replace(e.Msg, "open ", "cannot open ", 1)
			// include uwsgi_params / scgi_params: name the module, not only the missing file
			if _, after, ok := strings.Cut(e.Msg, "cannot open "); ok {
				if _, hint, ok := unsupportedHint(filepath.Base(strings.TrimSuffix(after, ": no such file or directory"))); ok {
					e.Hint = hint
				}
			}
		}
		return e
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &Error{File: file, Msg: "cannot open configuration file: no such file or directory"}
	}
	return &Error{File: file, Msg: err.Error()}
}

func (p *parser) run(file string, withCmdline bool) error {
	var top []*Directive
	if withCmdline {
		cl, err := p.parseFile(cmdlineName)
		if err != nil {
			return err
		}
		top = append(top, p.expand(&Block{raw: cl.Config[0].Parsed, file: cmdlineName, configs: cl.Config})...)
	}
	payload, err := p.parseFile(file)
	if err != nil {
		return err
	}
	mainDirs := p.expand(&Block{raw: payload.Config[0].Parsed, file: payload.Config[0].File, configs: payload.Config})
	p.cfg.Source = p.read

	// nginx lets a variable be used before the `set` or `map` that defines it: declare them all first.
	all := append(top, mainDirs...)
	if err := p.declareVars(all); err != nil {
		return err
	}
	if err := p.walk(all, CtxMain); err != nil {
		return err
	}
	return p.finish()
}

// expand turns a raw block into directives, replacing `include` with the included files' directives.
func (p *parser) expand(b *Block) []*Directive {
	var out []*Directive
	for _, d := range b.raw {
		if d.IsComment() {
			continue
		}
		pos := Pos{File: b.file, Line: d.Line}
		if d.Directive == "include" && len(d.Includes) > 0 {
			for _, idx := range d.Includes {
				c := b.configs[idx]
				out = append(out, p.expand(&Block{raw: c.Parsed, file: c.File, configs: b.configs})...)
			}
			continue
		}
		if d.Directive == "include" && (len(d.Args) != 1 || strings.ContainsAny(d.Args[0], "*?[")) {
			// a glob that matched nothing: nginx accepts it silently.
			continue
		}
		// any other include crossplane left alone is in a block it does not parse (map): the block reads it
		args := make([]string, len(d.Args))
		for i, a := range d.Args {
			args[i] = unescape(a)
		}
		nd := &Directive{Name: d.Directive, Args: args, Pos: pos}
		if d.IsBlock() {
			nd.Block = &Block{raw: d.Block, file: b.file, configs: b.configs}
		}
		out = append(out, nd)
	}
	return out
}

// body expands a directive's block.
func (p *parser) body(d *Directive) []*Directive { return p.expand(d.Block) }

// walk applies directives in a context.
func (p *parser) walk(ds []*Directive, ctx Context) error {
	for _, d := range ds {
		s, err := p.reg.check(d, ctx)
		if err != nil {
			return err
		}
		if s.Apply == nil {
			continue
		}
		if err := s.Apply(p, d); err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return err
			}
			return d.errorf("%v", err)
		}
	}
	return nil
}

// declareVars declares every `set` and `map` variable before templates are compiled.
func (p *parser) declareVars(ds []*Directive) error {
	for _, d := range ds {
		switch {
		case d.Name == "set" && len(d.Args) >= 1:
			name, ok := strings.CutPrefix(d.Args[0], "$")
			if !ok {
				return d.errorf("invalid variable name %q", d.Args[0])
			}
			if _, err := p.tab.Declare(name); err != nil {
				return d.errorf("%v", err)
			}
		case d.Name == "geo" || d.Name == "split_clients":
			// their targets may be read by a map before them
			if name, ok := strings.CutPrefix(d.Args[len(d.Args)-1], "$"); ok && len(d.Args) <= 2 {
				if _, err := p.tab.Declare(name); err != nil {
					return d.errorf("%v", err)
				}
			}
			continue
		case d.Name == "types" || d.Name == "map":
			continue // map targets are declared when the map is built, in order
		}
		if d.Block != nil && d.Name != "types" && d.Name != "map" {
			if err := p.declareVars(p.body(d)); err != nil {
				return err
			}
		}
	}
	return nil
}

// path resolves a path against the prefix (nginx: root, logs, pid).
func (p *parser) path(s string) string {
	if s == "" || filepath.IsAbs(s) || s == "stderr" || s == "stdout" || s == "off" {
		return s
	}
	return filepath.Join(p.prefix, s)
}

// confPath resolves a path against the configuration directory (nginx: include, ssl_certificate).
func (p *parser) confPath(s string) string {
	if s == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(p.confDir, s)
}

// compile compiles a value template, reporting errors at d.
func (p *parser) compile(d *Directive, s string) (*vars.Template, error) {
	t, err := vars.Compile(s, p.tab)
	if err != nil {
		return nil, d.errorf("%v", err)
	}
	return t, nil
}

func (p *parser) onOff(d *Directive) (bool, error) {
	switch d.Args[0] {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, d.errorf("invalid value %q in %q directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
}

func (p *parser) duration(d *Directive, s string) (time.Duration, error) {
	v, err := ParseDuration(s)
	if err != nil {
		return 0, d.errorf("invalid value %q in %q directive: %v", s, d.Name, err)
	}
	return v, nil
}

func (p *parser) size(d *Directive, s string) (int64, error) {
	v, err := ParseSize(s)
	if err != nil {
		return 0, d.errorf("invalid value %q in %q directive: %v", s, d.Name, err)
	}
	return v, nil
}

func (p *parser) dup(d *Directive) *Error { return d.errorf("%q directive is duplicate", d.Name) }

// unescape applies nginx's escapes in a token (crossplane keeps them): \t \r \n become control characters
// and a doubled backslash one backslash; any other backslash stays, so regexes like \.php$ are untouched.
func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case '\\', '"', '\'':
				b.WriteByte(s[i+1])
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
