// Command ccbuilder is a Fabric external builder for chaincode run as a service.
//
// Fabric calls bin/detect, bin/build and bin/release; all three are links to
// this one binary, which dispatches on the name it was called by. It accepts
// packages whose metadata.json has type "ccaas" and fills {{.key}} templates in
// connection.json from the JSON object in CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG,
// so one package can point each organization's peer at its own server.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

const configEnv = "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"

func main() {
	var err error
	switch name := filepath.Base(os.Args[0]); name {
	case "detect":
		err = withArgs(2, func(a []string) error { return detect(a[1]) })
	case "build":
		err = withArgs(3, func(a []string) error { return build(a[0], a[1], a[2]) })
	case "release":
		err = withArgs(2, func(a []string) error { return release(a[0], a[1]) })
	default:
		err = fmt.Errorf("called as %q; expected detect, build or release", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ccbuilder %s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
}

func withArgs(n int, f func([]string) error) error {
	if len(os.Args)-1 < n {
		return fmt.Errorf("expected %d directory arguments, got %d", n, len(os.Args)-1)
	}
	return f(os.Args[1:])
}

// detect succeeds only for packages of type ccaas, so other builders can take the rest.
func detect(metadataDir string) error {
	raw, err := os.ReadFile(filepath.Join(metadataDir, "metadata.json"))
	if err != nil {
		return err
	}
	var meta struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return fmt.Errorf("metadata.json: %w", err)
	}
	if !strings.EqualFold(meta.Type, "ccaas") {
		return fmt.Errorf("package type is %q, not ccaas", meta.Type)
	}
	return nil
}

// build renders connection.json with this peer's settings into the output directory.
func build(sourceDir, metadataDir, outputDir string) error {
	if err := detect(metadataDir); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(sourceDir, "connection.json"))
	if err != nil {
		return err
	}
	values := map[string]any{}
	if cfg := os.Getenv(configEnv); cfg != "" {
		if err := json.Unmarshal([]byte(cfg), &values); err != nil {
			return fmt.Errorf("%s is not a JSON object: %w", configEnv, err)
		}
	}
	var conn map[string]any
	if err := json.Unmarshal(raw, &conn); err != nil {
		return fmt.Errorf("connection.json: %w", err)
	}
	for k, v := range conn {
		s, ok := v.(string)
		if !ok {
			continue
		}
		if conn[k], err = render(s, values); err != nil {
			return fmt.Errorf("connection.json field %q: %w", k, err)
		}
	}
	out, err := json.Marshal(conn)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outputDir, 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outputDir, "connection.json"), out, 0o600)
}

func render(text string, values map[string]any) (string, error) {
	t, err := template.New("field").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, values); err != nil {
		return "", err
	}
	return b.String(), nil
}

// release hands the rendered connection to the peer where it looks for a chaincode server.
func release(buildOutputDir, releaseDir string) error {
	raw, err := os.ReadFile(filepath.Join(buildOutputDir, "connection.json"))
	if err != nil {
		return err
	}
	dir := filepath.Join(releaseDir, "chaincode", "server")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "connection.json"), raw, 0o600)
}
