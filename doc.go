// Package agentid is the root of the agentid module: an identity control
// plane for AI agents. The binary is cmd/agentid; the public Go SDK is
// sdk/. This package holds no code, only the repository-wide tests that
// police package docs and the dependency direction.
package agentid
