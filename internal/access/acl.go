package access

import "net/netip"

// Rule is one allow or deny directive.
type Rule struct {
	Allow  bool
	All    bool
	Prefix netip.Prefix
}

// Permit applies allow/deny rules in order as nginx does: the first rule matching addr decides; when none
// matches, access is allowed.
func Permit(rules []Rule, addr netip.Addr) bool {
	allow, matched := Check(rules, addr)
	return allow || !matched
}

// Check is Permit that also says whether a rule matched at all (with `satisfy any`, only a matching allow
// grants access without authentication).
func Check(rules []Rule, addr netip.Addr) (allow, matched bool) {
	addr = addr.Unmap()
	for _, r := range rules {
		if r.All || r.Prefix.Contains(addr) {
			return r.Allow, true
		}
	}
	return false, false
}
