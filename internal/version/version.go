// Package version holds sluice's version, shared by the binary's banner (-v) and $nginx_version.
package version

// Version is sluice's release version.
const Version = "0.1.0"
