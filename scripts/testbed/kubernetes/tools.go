//go:build tools

// Package testbed pins the Kubernetes control-plane binaries that Millrace's tests run against.
// Nothing here is product code; scripts/cluster builds these packages and caches the binaries.
package testbed

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
