package config

import (
	"github.com/sluice-proxy/sluice/internal/route"
	"regexp"
	"strconv"
	"strings"
)

// rewriteDirectives are nginx's ngx_http_rewrite_module: statements run in order in the server and location
// rewrite phases.
var rewriteDirectives = []Spec{
	{Name: "rewrite_log", Module: "http_rewrite", Ctx: ctxHSL | CtxIf, Args: "1", Default: "off", Doc: "Logs each rewrite and `if` regex tried (matches / does not match) and each rewrite's result (rewritten data, rewritten redirect) to the error log at notice, as nginx words them; error_log must be at notice or below to show them.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.RewriteLog) }},
	{Name: "set", Module: "http_rewrite", Ctx: CtxServer | CtxLocation | CtxIf, Args: "2", Doc: "Assigns a value (with variables) to a variable.",
		Apply: func(p *parser, d *Directive) error {
			name := strings.TrimPrefix(d.Args[0], "$")
			idx, err := p.tab.Declare(name)
			if err != nil {
				return d.errorf("%v", err)
			}
			t, err := p.compile(d, d.Args[1])
			if err != nil {
				return err
			}
			*p.ops = append(*p.ops, Op{Kind: OpSet, Var: idx, Val: t, Pos: d.Pos})
			return nil
		}},
	{Name: "return", Module: "http_rewrite", Ctx: CtxServer | CtxLocation | CtxIf, Args: "1-2", Doc: "Stops processing and returns a status with text, or a redirect.",
		Apply: func(p *parser, d *Directive) error {
			op := Op{Kind: OpReturn, Pos: d.Pos}
			code, err := strconv.Atoi(d.Args[0])
			switch {
			case err == nil:
				if code < 0 || code > 999 {
					return d.errorf("invalid return code %q", d.Args[0])
				}
				op.Code = code
				if len(d.Args) == 2 {
					t, err := p.compile(d, d.Args[1])
					if err != nil {
						return err
					}
					op.Val = t
				}
			case len(d.Args) == 1:
				// `return URL;` is a 302 redirect to a URL with a scheme.
				u := d.Args[0]
				if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "$scheme") {
					return d.errorf("invalid return code %q", u)
				}
				op.Code = 302
				t, err := p.compile(d, u)
				if err != nil {
					return err
				}
				op.Val = t
			default:
				return d.errorf("invalid return code %q", d.Args[0])
			}
			*p.ops = append(*p.ops, op)
			return nil
		}},
	{Name: "rewrite", Module: "http_rewrite", Ctx: CtxServer | CtxLocation | CtxIf, Args: "2-3", Doc: "Changes the URI with a regex: flags last, break, redirect, permanent.",
		Apply: func(p *parser, d *Directive) error {
			re, err := regexp.Compile(d.Args[0])
			if err != nil {
				return d.errorf("invalid regex %q: %s", d.Args[0], route.ExplainRegexError(d.Args[0], err))
			}
			if err := p.tab.AddCaptureNames(re); err != nil {
				return d.errorf("%v", err)
			}
			// the replacement's first "?" starts its arguments; a final "?" drops the request's own
			repl, argsPart, hasArgs := strings.Cut(d.Args[1], "?")
			t, err := p.compile(d, repl)
			if err != nil {
				return err
			}
			op := Op{Kind: OpRewrite, Re: re, Val: t, Pos: d.Pos}
			if hasArgs {
				op.DropArgs = strings.HasSuffix(argsPart, "?") || argsPart == ""
				if argsPart = strings.TrimSuffix(argsPart, "?"); argsPart != "" {
					if op.Args, err = p.compile(d, argsPart); err != nil {
						return err
					}
				}
			}
			if len(d.Args) == 3 {
				op.Flag = d.Args[2]
				switch op.Flag {
				case "last", "break":
				case "redirect":
					op.Code = 302
				case "permanent":
					op.Code = 301
				default:
					return d.errorf("invalid parameter %q", op.Flag)
				}
			}
			if op.Code == 0 && (strings.HasPrefix(d.Args[1], "http://") || strings.HasPrefix(d.Args[1], "https://") || strings.HasPrefix(d.Args[1], "$scheme")) {
				op.Code = 302
			}
			*p.ops = append(*p.ops, op)
			return nil
		}},
	{Name: "break", Module: "http_rewrite", Ctx: CtxServer | CtxLocation | CtxIf, Args: "0", Doc: "Stops the rewrite statements of the current block.",
		Apply: func(p *parser, d *Directive) error {
			*p.ops = append(*p.ops, Op{Kind: OpBreak, Pos: d.Pos})
			return nil
		}},
	{Name: "if", Module: "http_rewrite", Ctx: CtxServer | CtxLocation, Args: "1+", Block: true, Doc: "Runs the enclosed return, set, rewrite, break and add_header when the condition holds.",
		Diff:  "only rewrite-module statements and add_header/root/error_page take effect inside if; proxy_pass inside if is not supported yet.",
		Apply: (*parser).ifBlock},
}

func (p *parser) ifBlock(d *Directive) error {
	c, err := p.condition(d)
	if err != nil {
		return err
	}
	op := Op{Kind: OpIf, Cond: c, IfConf: &LocConf{}, Pos: d.Pos}
	saveOps, saveConf := p.ops, p.conf
	p.ops, p.conf = &op.Then, op.IfConf
	err = p.walk(p.body(d), CtxIf)
	p.ops, p.conf = saveOps, saveConf
	if err != nil {
		return err
	}
	*p.ops = append(*p.ops, op)
	return nil
}

// condition parses `if` arguments. crossplane has already removed the parentheses and the tokens they left
// empty ("( $a )"), so an empty argument is an empty string as written: ($query_string != "").
func (p *parser) condition(d *Directive) (*Cond, error) {
	args := d.Args
	c := &Cond{}
	switch len(args) {
	case 1:
		t, err := p.compile(d, args[0])
		if err != nil {
			return nil, err
		}
		c.Var = t
	case 2:
		switch args[0] {
		case "-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x":
		default:
			return nil, d.errorf("invalid condition %q", args[0])
		}
		c.Op = args[0]
		t, err := p.compile(d, args[1])
		if err != nil {
			return nil, err
		}
		c.Var = t
	case 3:
		t, err := p.compile(d, args[0])
		if err != nil {
			return nil, err
		}
		c.Var, c.Op, c.Value = t, args[1], args[2]
		switch c.Op {
		case "=", "!=":
		case "~", "!~":
			re, err := regexp.Compile(c.Value)
			if err != nil {
				return nil, d.errorf("invalid regex %q: %s", c.Value, route.ExplainRegexError(c.Value, err))
			}
			c.Re = re
			if err := p.tab.AddCaptureNames(re); err != nil {
				return nil, d.errorf("%v", err)
			}
		case "~*", "!~*":
			re, err := regexp.Compile("(?i)" + c.Value)
			if err != nil {
				return nil, d.errorf("invalid regex %q: %s", c.Value, route.ExplainRegexError(c.Value, err))
			}
			c.Re = re
			if err := p.tab.AddCaptureNames(re); err != nil {
				return nil, d.errorf("%v", err)
			}
		default:
			return nil, d.errorf("unexpected %q in condition", c.Op)
		}
	default:
		return nil, d.errorf("invalid condition in \"if\"")
	}
	return c, nil
}
