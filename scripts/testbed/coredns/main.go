// Command coredns is upstream CoreDNS with only the plugins the real node's cluster DNS uses,
// built from the Go module proxy for Millrace's test bed (scripts/testbed/build-node-addons). It
// does what upstream's coredns.go does, with a shorter plugin list: upstream's full list pulls in
// every cloud provider's SDK.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

// plugins are the directives imported above; upstream's Directives gives their order.
var plugins = map[string]bool{
	"bind": true, "cache": true, "errors": true, "forward": true, "health": true,
	"kubernetes": true, "loop": true, "ready": true,
}

func init() {
	var ordered []string
	for _, name := range dnsserver.Directives {
		if plugins[name] {
			ordered = append(ordered, name)
		}
	}
	dnsserver.Directives = ordered
}

func main() {
	coremain.Run()
}
