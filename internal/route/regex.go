package route

import (
	"fmt"
	"regexp"
	"strings"
)

// compileRegex compiles an nginx (PCRE) regular expression with Go's RE2 engine. When RE2 refuses
// it, the error names the PCRE construct responsible if there is one, since Go's own message
// ("invalid or unsupported Perl syntax") does not say that the feature is missing on purpose.
func compileRegex(src string, caseless bool) (*regexp.Regexp, error) {
	expr := src
	if caseless {
		expr = "(?i)" + src
	}
	re, err := regexp.Compile(expr)
	if err == nil {
		return re, nil
	}
	return nil, fmt.Errorf("invalid regular expression %q: %s", src, ExplainRegexError(src, err))
}

// ExplainRegexError says why RE2 refused the nginx (PCRE) regular expression src: the PCRE construct
// responsible if there is one, with a way to write the usual cases without it, else err's own text.
func ExplainRegexError(src string, err error) string {
	what := unsupportedConstruct(src)
	if what == "" {
		return err.Error()
	}
	s := what + " is not supported (Go's RE2 syntax has no backreferences, lookaround, atomic groups, possessive quantifiers or recursion)"
	if strings.HasPrefix(what, "negative lookahead") {
		// the idiom of Laravel, h5bp and Nextcloud: "every dot file but /.well-known", "every script but these"
		s += "; write the exception as a location of its own matched first (location ^~ /.well-known/ { } before " +
			"location ~ /\\. { deny all; }), or as a map whose variable an if tests"
	}
	return s
}

// unsupportedConstruct names the first PCRE-only construct in src, or returns "".
func unsupportedConstruct(src string) string {
	inClass := false
	prevQuant := false // the previous token was an unescaped quantifier
	for i := 0; i < len(src); i++ {
		c := src[i]
		quant := false
		switch {
		case c == '\\':
			if i+1 >= len(src) {
				return ""
			}
			n := src[i+1]
			i++
			if inClass {
				break
			}
			switch {
			case '1' <= n && n <= '9':
				return fmt.Sprintf("backreference `\\%c`", n)
			case n == 'k' || n == 'g':
				return fmt.Sprintf("backreference `\\%c`", n)
			}
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(src) && src[i+1] == '^' {
				i++
			}
			if i+1 < len(src) && src[i+1] == ']' { // a leading ']' is literal
				i++
			}
		case c == '(' && strings.HasPrefix(src[i:], "(?"):
			if what := groupConstruct(src[i+2:]); what != "" {
				return what
			}
		case c == '+' && prevQuant:
			return "possessive quantifier `" + string(src[i-1]) + "+`"
		case c == '*' || c == '+' || c == '?' || c == '}':
			quant = true
		}
		prevQuant = quant
	}
	return ""
}

// groupConstruct names an unsupported "(?..." group, given the text after "(?".
func groupConstruct(rest string) string {
	for _, g := range [...]struct{ prefix, what string }{
		{"=", "lookahead `(?=`"},
		{"!", "negative lookahead `(?!`"},
		{"<=", "lookbehind `(?<=`"},
		{"<!", "negative lookbehind `(?<!`"},
		{">", "atomic group `(?>`"},
		{"|", "branch reset group `(?|`"},
		{"'", "named group `(?'name'...)` (write `(?<name>...)`)"},
		{"(", "conditional group `(?(`"},
		{"R", "recursion `(?R)`"},
		{"&", "subroutine call `(?&`"},
		{"P>", "subroutine call `(?P>`"},
		{"P=", "backreference `(?P=`"},
		{"#", "comment group `(?#`"},
	} {
		if strings.HasPrefix(rest, g.prefix) {
			return g.what
		}
	}
	if rest != "" && ('0' <= rest[0] && rest[0] <= '9' || rest[0] == '+' || rest[0] == '-' && len(rest) > 1 && '0' <= rest[1] && rest[1] <= '9') {
		return "subroutine call `(?" + rest[:1] + "`"
	}
	return ""
}
