// Package buildinfo holds the version of this binary, set at link time with
// -ldflags "-X github.com/agentid/agentid/internal/buildinfo.Version=…".
package buildinfo

// Version is the release version; "dev" for untagged builds.
var Version = "dev" //nolint:gochecknoglobals // set by the linker, never written at run time
