//go:build tools

// Package testbed pins kube-router, whose network-policy controller (run alone: no routing, no
// service proxy) enforces NetworkPolicy on the real node (scripts/cluster up --real-node).
// Nothing here is product code; scripts/testbed/build-node-addons builds it and caches the binary.
package testbed

import (
	_ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
)
