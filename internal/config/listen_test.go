package config

import (
	"net"
	"testing"
	"time"
)

func TestParseSoKeepalive(t *testing.T) {
	sys := time.Duration(-1)
	for _, tt := range []struct {
		in   string
		want net.KeepAliveConfig
		ok   bool
	}{
		{"off", net.KeepAliveConfig{}, true},
		{"on", net.KeepAliveConfig{Enable: true, Idle: sys, Interval: sys, Count: -1}, true},
		{"30m::10", net.KeepAliveConfig{Enable: true, Idle: 30 * time.Minute, Interval: sys, Count: 10}, true},
		{"60:5:", net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: 5 * time.Second, Count: -1}, true},
		{"::", net.KeepAliveConfig{Enable: true, Idle: sys, Interval: sys, Count: -1}, true},
		{"yes", net.KeepAliveConfig{}, false},
		{"1:2", net.KeepAliveConfig{}, false},
		{"x::", net.KeepAliveConfig{}, false},
		{"::0", net.KeepAliveConfig{}, false},
	} {
		got, err := parseSoKeepalive(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("parseSoKeepalive(%q) = %+v, %v; want %+v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
