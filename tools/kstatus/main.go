// kstatus reads Kubernetes objects as JSON on stdin (one object, or a List) and prints, for each,
// the status kstatus computes (sigs.k8s.io/cli-utils/pkg/kstatus/status, the library Flux's health
// checks, `kubectl wait --for` tooling and Helm 4's --wait use), one line each:
//
//	<name> <status> <message>
//
// Test tooling only: trailkeeper's tests pipe objects served by the real API server into it.
package main

import (
	"fmt"
	"io"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
	var object map[string]interface{}
	if err := utiljson.Unmarshal(data, &object); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: not a JSON object:", err)
		os.Exit(2)
	}
	objects := []map[string]interface{}{object}
	if items, ok := object["items"].([]interface{}); ok {
		objects = nil
		for _, item := range items {
			if o, ok := item.(map[string]interface{}); ok {
				objects = append(objects, o)
			}
		}
	}
	for _, o := range objects {
		u := &unstructured.Unstructured{Object: o}
		result, err := status.Compute(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", u.GetName(), err)
			os.Exit(1)
		}
		fmt.Printf("%s %s %s\n", u.GetName(), result.Status, result.Message)
	}
}
