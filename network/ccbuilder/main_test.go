package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDetectAcceptsOnlyCCaaSPackages(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "metadata.json", `{"type":"CCaaS","label":"x_1"}`)
	if err := detect(dir); err != nil {
		t.Fatalf("ccaas package refused: %v", err)
	}
	writeFile(t, dir, "metadata.json", `{"type":"golang","label":"x_1"}`)
	if err := detect(dir); err == nil {
		t.Fatal("golang package accepted")
	}
}

func TestBuildFillsConnectionTemplatesFromThePeersConfig(t *testing.T) {
	src, meta, out := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, meta, "metadata.json", `{"type":"ccaas"}`)
	writeFile(t, src, "connection.json", `{"address":"{{.address}}","dial_timeout":"10s","tls_required":true,"root_cert":"{{.root_cert}}"}`)
	t.Setenv(configEnv, `{"address":"127.0.0.1:7040","root_cert":"-----BEGIN CERTIFICATE-----\nabc\n"}`)
	if err := build(src, meta, out); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "connection.json"))
	var conn map[string]any
	if err := json.Unmarshal(raw, &conn); err != nil {
		t.Fatal(err)
	}
	if conn["address"] != "127.0.0.1:7040" || conn["tls_required"] != true || !strings.Contains(conn["root_cert"].(string), "abc\n") {
		t.Fatalf("unexpected connection: %s", raw)
	}
	rel := t.TempDir()
	if err := release(out, rel); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rel, "chaincode", "server", "connection.json")); err != nil {
		t.Fatalf("release did not place connection.json: %v", err)
	}
}

func TestBuildFailsWhenATemplateValueIsMissing(t *testing.T) {
	src, meta, out := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, meta, "metadata.json", `{"type":"ccaas"}`)
	writeFile(t, src, "connection.json", `{"address":"{{.address}}"}`)
	t.Setenv(configEnv, `{}`)
	if err := build(src, meta, out); err == nil || !strings.Contains(err.Error(), "address") {
		t.Fatalf("expected an error naming the address field, got %v", err)
	}
}
