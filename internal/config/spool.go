package config

import (
	"errors"
	"os"
	"strconv"
)

// Spooling is how much of a buffered response may be read ahead of a slow client, for one family of
// directives (proxy_buffers, proxy_max_temp_file_size, proxy_temp_path; fastcgi_, uwsgi_, scgi_ alike).
type Spooling struct {
	Buffers     Opt[Buffers]
	MaxTempFile Opt[int64]  // bytes; 0: no temporary file
	TempPath    Opt[string] // directory of the temporary files, resolved against the prefix
}

// Buffers is *_buffers: number × size bytes held in memory.
type Buffers struct {
	Num  int
	Size int64
}

// SpoolDefaults are nginx's defaults on x86-64 Linux (a page is 4k): 8 4k buffers and a 1024m file.
var SpoolDefaults = struct {
	Buffers     Buffers
	MaxTempFile int64
}{Buffers{8, 4 << 10}, 1 << 30}

// Mem is the bytes held in memory ahead of the client.
func (s *Spooling) Mem() int64 {
	b := s.Buffers.Get(SpoolDefaults.Buffers)
	return int64(b.Num) * b.Size
}

// MaxFile is the bytes held in the temporary file beyond Mem.
func (s *Spooling) MaxFile() int64 { return s.MaxTempFile.Get(SpoolDefaults.MaxTempFile) }

// Dir is where the temporary files go: *_temp_path, else the system's temporary directory ($TMPDIR, /tmp).
func (s *Spooling) Dir() string {
	if s.TempPath.Set {
		return s.TempPath.V
	}
	return os.TempDir()
}

// spoolDirectives are the spooling families of proxy_ and the three gateway prefixes.
var spoolDirectives = append(append(append(
	spoolFamily("proxy", "http_proxy", func(lc *LocConf) *Spooling { return &lc.ProxySpool }),
	spoolFamily("fastcgi", "http_fastcgi", func(lc *LocConf) *Spooling { return &lc.FastCGIOpts.Spool })...),
	spoolFamily("uwsgi", "http_uwsgi", func(lc *LocConf) *Spooling { return &lc.UWSGIOpts.Spool })...),
	spoolFamily("scgi", "http_scgi", func(lc *LocConf) *Spooling { return &lc.SCGIOpts.Spool })...)

// spoolFamily declares pre's buffers, max_temp_file_size and temp_path, kept in the Spooling at of a level.
func spoolFamily(pre, module string, at func(*LocConf) *Spooling) []Spec {
	return []Spec{
		{Name: pre + "_buffers", Module: module, Ctx: ctxHSL, Args: "2", Default: "8 4k", Doc: "Number and size of the memory buffers that hold a buffered response read ahead of a slower client (" + pre + "_buffering on); beyond them it goes to a temporary file (" + pre + "_max_temp_file_size).",
			Diff: "the first 32k of a response are sent as they are read; the buffers are the memory held beyond that.",
			Apply: func(p *parser, d *Directive) error {
				n, err := strconv.Atoi(d.Args[0])
				if err != nil || n <= 0 {
					return d.errorf("\"%s\" directive invalid value", d.Name)
				}
				size, err := ParseSize(d.Args[1])
				if err != nil || size <= 0 {
					return d.errorf("\"%s\" directive invalid value", d.Name)
				}
				if n < 2 {
					return d.errorf("there must be at least 2 \"%s\"", d.Name)
				}
				at(p.conf).Buffers.set(Buffers{n, size})
				return nil
			}},
		{Name: pre + "_max_temp_file_size", Module: module, Ctx: ctxHSL, Args: "1", Default: "1024m", Doc: "Most bytes of a buffered response held in a temporary file ahead of a slower client (0: none; the upstream is then read at the client's pace once the buffers are full). The file is unlinked as soon as it is made.",
			Apply: func(p *parser, d *Directive) error {
				n, err := ParseSize(d.Args[0])
				if err != nil {
					return d.errorf("\"%s\" directive invalid value", d.Name)
				}
				at(p.conf).MaxTempFile.set(n)
				return nil
			}},
		{Name: pre + "_temp_path", Module: module, Ctx: ctxHSL, Args: "1-4", Default: "$TMPDIR or /tmp", Doc: "Directory of the temporary files of buffered responses (relative paths are under the prefix), made at load if missing; the levels are accepted.",
			Diff: "the default is the system's temporary directory, not <prefix>/" + pre + "_temp.",
			Apply: func(p *parser, d *Directive) error {
				dir := p.path(d.Args[0])
				// made at load, as nginx makes its temp paths at start: a missing directory is an error here,
				// not a log line per long response
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return d.errorf("mkdir() %q failed: %v", dir, errors.Unwrap(err))
				}
				at(p.conf).TempPath.set(dir)
				return nil
			}},
	}
}
