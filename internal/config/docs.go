package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// Reference renders the configuration reference (docs/configuration.md) from the directive tables, so the
// documentation lists exactly the directives the parser accepts.
func (r *Registry) Reference() string {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("<!-- Generated from the directive tables in internal/config by `make docs`; do not edit by hand. -->\n\n")
	b.WriteString("sluice reads nginx's configuration language. Every directive it accepts is listed here, grouped by the nginx\n")
	b.WriteString("module it comes from (`sluice` marks sluice's own). *Accepted, no effect* directives are parsed so existing\n")
	b.WriteString("nginx files load unchanged, but do nothing. Differences from nginx are summarised in\n")
	b.WriteString("[nginx-differences.md](nginx-differences.md). Any other directive is refused with file:line and a suggestion.\n\n")
	byModule := map[string][]*Spec{}
	for _, s := range r.Specs() {
		byModule[s.Module] = append(byModule[s.Module], s)
	}
	mods := make([]string, 0, len(byModule))
	for m := range byModule {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		fmt.Fprintf(&b, "## %s\n\n", m)
		for _, s := range byModule[m] {
			fmt.Fprintf(&b, "### `%s`\n\n", s.Name)
			fmt.Fprintf(&b, "- Context: %s\n", s.Ctx)
			fmt.Fprintf(&b, "- Arguments: %s%s\n", argText(s), blockText(s))
			if s.Default != "" {
				fmt.Fprintf(&b, "- Default: `%s`\n", s.Default)
			}
			if s.Ignored {
				b.WriteString("- **Accepted, no effect.**\n")
			}
			fmt.Fprintf(&b, "\n%s\n", s.Doc)
			if s.Diff != "" {
				fmt.Fprintf(&b, "\n*Difference from nginx:* %s\n", s.Diff)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("## Not supported\n\n")
	b.WriteString("Directives of these modules are refused at their line with the hint below (names ending in `_` stand for\n")
	b.WriteString("every directive that starts so, names starting with `_` for every one that ends so; a directive listed above\n")
	b.WriteString("is accepted even where it matches).\n\n")
	b.WriteString("| module | directives | hint |\n|---|---|---|\n")
	for _, m := range unsupportedModules {
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", m.module, strings.Join(m.names, "`, `"), m.hint)
	}
	b.WriteString("\n## Variables\n\n")
	b.WriteString("Built-in variables, usable wherever a directive takes variables (log_format, add_header, proxy_set_header,\n")
	b.WriteString("return, map, if, …); `map` and `set` define more. NAME stands for a header, cookie or argument name.\n\n")
	b.WriteString("| variable | value |\n|---|---|\n")
	for _, d := range vars.Docs() {
		fmt.Fprintf(&b, "| `$%s` | %s |\n", d.Name, strings.ReplaceAll(d.Text, "|", "\\|"))
	}
	return b.String()
}

func argText(s *Spec) string {
	min, max := s.argRange()
	switch {
	case max < 0:
		return fmt.Sprintf("%d or more", min)
	case min == max:
		return fmt.Sprint(min)
	}
	return fmt.Sprintf("%d to %d", min, max)
}

func blockText(s *Spec) string {
	switch {
	case s.Either:
		return ", with a block in http"
	case s.Block:
		return ", with a block"
	}
	return ""
}
