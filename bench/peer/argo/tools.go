//go:build tools

// Package peer pins Argo Workflows' workflow-controller, the peer that bench/peer/argo-up runs on the
// same local control plane as Millrace for issue #11's comparison.
package peer

import (
	_ "github.com/argoproj/argo-workflows/v3/cmd/workflow-controller"
)
