package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/twostep-auth/twostep/internal/auth"
)

const adminUsage = `Usage:
  twostep admin create --email E --password P [--username U] [-config FILE]
      create an account with role admin
  twostep admin unlock --email E [-config FILE]
      clear the account's password-login throttle and second-factor lock
`

func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, adminUsage)
		return errors.New("admin: missing subcommand")
	}
	switch args[0] {
	case "create", "unlock":
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, adminUsage)
		return nil
	default:
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("admin: unknown subcommand %q", args[0])
	}
	sub := args[0]
	fs := flag.NewFlagSet("admin "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "TOML configuration `file` (optional)")
	email := fs.String("email", "", "the account's email")
	pw := fs.String("password", "", "the account's password (8 to 1024 bytes)")
	username := fs.String("username", "", "optional username")
	fs.Usage = func() { fmt.Fprint(fs.Output(), adminUsage+"\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *email == "" || (sub == "create" && *pw == "") {
		fs.Usage()
		return errors.New("admin " + sub + ": --email and --password are required")
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	a, err := buildApp(ctx, cfg, newLogger(cfg, stderr), false)
	if err != nil {
		return err
	}
	defer a.Close()
	meta := auth.RequestMeta{UserAgent: "twostep-cli"}
	switch sub {
	case "create":
		u, err := a.svc.Register(ctx, auth.RegisterInput{Email: *email, Username: *username, Password: *pw, Roles: []string{auth.RoleAdmin}}, meta)
		if err != nil {
			return fmt.Errorf("admin create: %w", err)
		}
		fmt.Fprintf(stdout, "created admin %s (%s)\n", u.Email, u.ID)
	case "unlock":
		if err := a.svc.Unlock(ctx, *email, meta); err != nil {
			return fmt.Errorf("admin unlock: %w", err)
		}
		fmt.Fprintf(stdout, "unlocked %s\n", *email)
	}
	return nil
}
