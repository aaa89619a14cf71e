package route

import "testing"

func TestUnsupportedConstruct(t *testing.T) {
	tests := []struct{ src, want string }{
		{`^/(?=a)`, "lookahead `(?=`"},
		{`^/(?!a)`, "negative lookahead `(?!`"},
		{`(?<=a)b`, "lookbehind `(?<=`"},
		{`(?<!a)b`, "negative lookbehind `(?<!`"},
		{`(?>a+)b`, "atomic group `(?>`"},
		{`(?'n'a)`, "named group `(?'name'...)` (write `(?<name>...)`)"},
		{`(a)\1`, "backreference `\\1`"},
		{`(?<n>a)\k<n>`, "backreference `\\k`"},
		{`(?P<n>a)(?P=n)`, "backreference `(?P=`"},
		{`a*+`, "possessive quantifier `*+`"},
		{`a{2}+`, "possessive quantifier `}+`"},
		{`(a|(?R))`, "recursion `(?R)`"},
		{`(a)(?1)`, "subroutine call `(?1`"},
		{`(?(1)a|b)`, "conditional group `(?(`"},
		// Supported or merely invalid syntax: nothing to name.
		{`(?<n>a)(?P<m>b)`, ""},
		{`\\1`, ""},
		{`[(?=]`, ""},
		{`[]\1]`, ""},
		{`\++`, ""},
		{`(`, ""},
	}
	for _, tt := range tests {
		if got := unsupportedConstruct(tt.src); got != tt.want {
			t.Errorf("unsupportedConstruct(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}
