package config

import "testing"

// TestSubFilterInheritance: sub_filter is an array directive (a level with any replaces the inherited list),
// the others inherit one by one; a level without any sub_filter has no filter.
func TestSubFilterInheritance(t *testing.T) {
	cfg, err := load(t, `http {
    sub_filter Top T;
    sub_filter_types text/css;
    server {
        listen 8080;
        location /inherit { }
        location /own {
            sub_filter own O;
            sub_filter_once off;
            sub_filter_last_modified on;
            location /own/nested { sub_filter_types text/plain; }
        }
    }
    server { listen 8081; sub_filter_types *; location /none { } }
}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		srv           int
		path          string
		searches      string
		once, lastMod bool
		css, plain    bool
	}{
		{0, "/inherit", "Top", true, false, true, false},
		{0, "/own", "own", false, true, true, false},
		{0, "/own/nested", "own", false, true, false, true},
		{1, "/none", "Top", true, false, true, true},
	}
	for _, tt := range tests {
		m, ok := cfg.HTTP.Servers[tt.srv].Matcher.Match(tt.path)
		if !ok {
			t.Fatalf("%s: no location", tt.path)
		}
		f := m.Loc.Value.Conf.SubFilter
		if f == nil {
			t.Fatalf("%s: no sub_filter", tt.path)
		}
		got := ""
		for _, p := range f.Pairs {
			got += p.Search.String()
		}
		if got != tt.searches || f.Once != tt.once || f.LastModified != tt.lastMod ||
			f.Takes("text/css", -1) != tt.css || f.Takes("text/plain", -1) != tt.plain || !f.Takes("text/html", -1) {
			t.Errorf("%s: searches %q once %v last_modified %v css %v plain %v", tt.path, got, f.Once, f.LastModified,
				f.Takes("text/css", -1), f.Takes("text/plain", -1))
		}
		if tt.plain && tt.srv == 1 && !f.Takes("", -1) {
			t.Errorf("%s: \"*\" takes a response without a type", tt.path)
		}
	}
	cfg, err = load(t, "http { server { listen 8080; location / { } } }", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cfg.HTTP.Servers[0].Matcher.Match("/")
	if f := m.Loc.Value.Conf.SubFilter; f != nil {
		t.Errorf("no sub_filter: a filter %v", f)
	}
}
