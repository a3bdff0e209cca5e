// Command twostep is a self-hosted authentication server centred on
// two-step verification. Run "twostep -h" for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "twostep:", err)
		os.Exit(1)
	}
}

const usage = `twostep: an authentication server centred on two-step verification

Usage:
  twostep serve [-config FILE] [-addr HOST:PORT] [-migrate]   run the HTTP server
  twostep migrate [-config FILE]                              apply database migrations
  twostep admin create --email E --password P [-config FILE]  create an account with role admin
  twostep admin unlock --email E [-config FILE]               clear an account's login throttle
  twostep version                                             print the version

Configuration comes from TWOSTEP_* environment variables and an optional
TOML file (-config); "twostep serve -h" lists every variable.
`

// run is the whole program, with its environment passed in so tests can
// call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("missing command")
	}
	switch args[1] {
	case "serve":
		return runServe(ctx, args[2:], getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[2:], getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, args[2:], getenv, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "twostep", version)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[1])
	}
}
