// Package route chooses where a request goes, with nginx's rules: it normalises the request path
// (Normalize, EscapePath), picks the location block for a path (Compile, Matcher) and picks the
// server block for a Host value (NewServerIndex, ServerIndex, CleanHost).
//
// The package is generic over the payload attached to a location or a server, so the config and
// server packages can hang their own compiled structures on the results. Everything built here is
// immutable after construction and safe for concurrent use.
//
// Regular expressions use Go's RE2 syntax, which differs from nginx's PCRE in a few ways:
// backreferences (\1, \k<name>), lookaround ((?=, (?!, (?<=, (?<!), atomic groups, possessive
// quantifiers, recursion and conditionals are not supported, and Compile or NewServerIndex
// reports them by name. "$" matches only at the very end of the subject (PCRE also matches
// before a final newline, so nginx matches "/x.php%0A" against `\.php$`; sluice does not).
// Named groups may be written (?<name>...) or (?P<name>...).
package route
