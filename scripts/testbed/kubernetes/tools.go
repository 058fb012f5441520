//go:build tools

// Package testbed pins the Kubernetes binaries that Millrace's tests run against: the control
// plane, and the kubelet and kube-proxy of the real node (scripts/cluster up --real-node).
// Nothing here is product code; scripts/cluster builds these packages and caches the binaries.
package testbed

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
