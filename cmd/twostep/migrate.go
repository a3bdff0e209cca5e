package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/twostep-auth/twostep/internal/sqlstore"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "TOML configuration `file` (optional)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: twostep migrate [-config FILE]\n\nApplies the embedded migrations to TWOSTEP_DATABASE_URL. Safe to run from\nseveral instances at once.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	db, err := sqlstore.Open(ctx, cfg.DB.URL, sqlstore.Options{MaxOpenConns: 2, Logger: newLogger(cfg, stderr)})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied migrations %v\n", applied)
	return nil
}
