package auth_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSecurityRulesSecretsFromCryptoRand guards "TOTP: 20-byte secret from
// crypto/rand" and "SMS/voice codes: 6 digits from crypto/rand" (and the
// tokens and backup codes drawn the same way). A predictable source cannot
// be told from a good one by looking at its output in a test, so this reads
// the source: no non-test file of the packages that make secrets may import
// math/rand, and the service's default random source must be
// crypto/rand.Reader.
func TestSecurityRulesSecretsFromCryptoRand(t *testing.T) {
	for _, dir := range []string{".", "../totp", "../backupcode", "../token", "../seal", "../password"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("%s: no Go files", dir)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == "math/rand" || p == "math/rand/v2" {
					t.Errorf("%s imports %s: secrets, codes and tokens must come from crypto/rand", file, p)
				}
			}
		}
	}

	// The service's default source (Deps.Rand unset) is crypto/rand.Reader.
	src, err := os.ReadFile("service.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "service.go", src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "crypto/rand" {
			name = "rand"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" || !strings.Contains(string(src), "s.rand = "+name+".Reader") {
		t.Errorf("service.go: the default random source is not crypto/rand.Reader")
	}
}
