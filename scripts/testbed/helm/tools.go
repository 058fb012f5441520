//go:build tools

// Package testbed pins helm, which lints and renders Millrace's chart in the tests.
package testbed

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
