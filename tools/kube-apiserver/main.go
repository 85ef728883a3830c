// A kube-apiserver for trailkeeper's tests: the upstream command, built from the
// published Go modules. Test tooling only; the product is Rust.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
