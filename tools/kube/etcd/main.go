// Command etcd runs the etcd server from go.etcd.io/etcd/server/v3, exactly as etcd's own
// main package does (etcdmain.Main with the process arguments).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
