//go:build tools

// Package testbed pins kwok, which runs the fake nodes of Millrace's test bed.
package testbed

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
