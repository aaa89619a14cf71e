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
	addr = addr.Unmap()
	for _, r := range rules {
		if r.All || r.Prefix.Contains(addr) {
			return r.Allow
		}
	}
	return true
}
