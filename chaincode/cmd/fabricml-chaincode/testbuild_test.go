//go:build conformance

package main

import (
	"slices"
	"testing"
)

func TestTheTestBuildAddsTheConformanceContract(t *testing.T) {
	if !slices.Contains(names(contracts()), "Conformance") {
		t.Fatalf("the test build serves %v", names(contracts()))
	}
}
