// Command etcd is upstream etcd's server, built from the Go module proxy for Millrace's test bed.
// It does what upstream's server/main.go does; scripts/cluster builds and caches it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
