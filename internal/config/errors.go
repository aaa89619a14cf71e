package config

import "fmt"

// Error is a configuration error at a place in a file, with an optional hint on how to fix it.
type Error struct {
	File string
	Line int
	Msg  string
	Hint string
}

// Error renders nginx's wording ("unknown directive "x" in /etc/sluice.conf:12") followed by the hint.
func (e *Error) Error() string {
	s := e.Msg
	if e.File != "" {
		if e.Line > 0 {
			s += fmt.Sprintf(" in %s:%d", e.File, e.Line)
		} else {
			s += " in " + e.File
		}
	}
	if e.Hint != "" {
		s += ", " + e.Hint
	}
	return s
}

func (p Pos) errorf(format string, args ...any) *Error {
	return &Error{File: p.File, Line: p.Line, Msg: fmt.Sprintf(format, args...)}
}
