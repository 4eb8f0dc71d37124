//go:build !conformance

package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The production server neither registers nor links the test contract: no client can
// write arbitrary state, another org's private data, or its own transient data.
func TestTheProductionBuildHasNoConformanceContract(t *testing.T) {
	if slices.Contains(names(contracts()), "Conformance") {
		t.Fatalf("the production build serves %v", names(contracts()))
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "chaincode/conformance") {
		t.Fatal("the production binary links the conformance package")
	}
}
