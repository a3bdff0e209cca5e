package main

import (
	"os"
	"strings"
	"testing"

	"github.com/twostep-auth/twostep/internal/config"
)

// The README's configuration table must name every setting the server
// reads, so the documentation cannot fall behind the code.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars() {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not list %s", v.Name)
		}
	}
}
