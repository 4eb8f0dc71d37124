package uncoded

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The packages whose errors reach clients: every refusal in them must carry a code.
var contractPackages = []string{"attestation", "caller", "conformance", "consortium", "federation", "ledgerutil", "registry", "token"}

func TestEveryContractRefusalIsCoded(t *testing.T) {
	for _, pkg := range contractPackages {
		findings, err := Scan(filepath.Join("..", "..", pkg))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Errorf("%s/%s: build the refusal with ledgerutil.Refuse(code, ...) or wrap it in ledgerutil.Context; identifier patterns belong in ledgerutil/identifiers.go", pkg, f)
		}
	}
}

const sample = `package sample

import (
	"errors"
	"fmt"
	re "regexp"

	lu "github.com/fabricml/fabricml/chaincode/ledgerutil"
)

type Contract struct{}

func (c *Contract) Leaks(id string) error { return fmt.Errorf("no task %q", id) }

func (c *Contract) Coded(id string) error { return lu.Refuse(lu.NotFound, "no task %q", id) }

func (c *Contract) Wrapped() error { return lu.Context(errors.New("disk"), "reading") }

func helper() error { return errors.New("bare") }

var stray = re.MustCompile("x")

func (c *Contract) Compiles() bool { return re.MustCompile("y").MatchString("y") }
`

// The guard must flag a bare error and a stray pattern, in exported and unexported
// functions alike, and leave coded and Context-wrapped errors alone.
func TestTheGuardFlagsUncodedErrorsAndOnlyThose(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sample.go"), []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sample_test.go"), []byte("package sample\nimport \"fmt\"\nvar _ = fmt.Errorf(\"tests may\")\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	findings, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, f := range findings {
		got = append(got, f.String())
	}
	want := "sample.go:13: Contract.Leaks calls fmt.Errorf|sample.go:19: helper calls errors.New|sample.go:21: a package-level declaration calls regexp.MustCompile|sample.go:23: Contract.Compiles calls regexp.MustCompile"
	if strings.Join(got, "|") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
}
