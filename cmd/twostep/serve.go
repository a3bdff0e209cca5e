package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/accountui"
	"github.com/twostep-auth/twostep/internal/adminui"
	"github.com/twostep-auth/twostep/internal/apispec"
	"github.com/twostep-auth/twostep/internal/config"
	"github.com/twostep-auth/twostep/internal/httpapi"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "TOML configuration `file` (optional)")
	addr := fs.String("addr", "", "listen address, overrides TWOSTEP_ADDR (use :0 for any free port)")
	migrate := fs.Bool("migrate", false, "apply database migrations before serving (always done on SQLite)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: twostep serve [-config FILE] [-addr HOST:PORT] [-migrate]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nEnvironment (a secret X may also be read from the file named by X_FILE):\n")
		printVars(fs.Output())
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
	if *addr != "" {
		cfg.HTTP.Addr = *addr
	}
	logger := newLogger(cfg, stderr)
	a, err := buildApp(ctx, cfg, logger, *migrate)
	if err != nil {
		return err
	}
	defer a.Close()

	// The admin panel's cookie key is shared by every instance through the
	// database, like the backup-code key.
	adminKey, err := a.db.ServerKey(ctx, "admin-ui-cookie", a.sealer, rand.Reader)
	if err != nil {
		return fmt.Errorf("load admin panel cookie key: %w", err)
	}
	adminUI, err := adminui.New(logger, a.svc, adminKey, adminui.Options{Meta: httpapi.RequestMeta})
	if err != nil {
		return err
	}

	// The hosted pages (/login, /signup, /account/security) seal their
	// cookie with a key of their own, shared the same way.
	accountKey, err := a.db.ServerKey(ctx, "account-ui-cookie", a.sealer, rand.Reader)
	if err != nil {
		return fmt.Errorf("load account pages cookie key: %w", err)
	}
	accountUI, err := accountui.New(logger, a.svc, accountKey, accountui.Options{
		Meta: httpapi.RequestMeta, AllowedReturnURLs: cfg.HTTP.AllowedReturnURLs, Name: cfg.Tokens.Issuer,
	})
	if err != nil {
		return err
	}

	handler := httpapi.NewServer(logger, httpapi.Options{
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		TrustedProxies: cfg.HTTP.TrustedProxies,
		AccessLog:      cfg.Log.AccessLog,
		Ready:          a.Ready,
		OpenAPI:        apispec.Document(),
		PlivoAnswers:   a.sms.plivoAnswers,
		AccountUI:      accountUI,
		AdminUI:        adminUI,
	}, a.svc, a.tokens, a.metrics)

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
	}
	go a.background(ctx)
	logger.Info("twostep listening", "addr", "http://"+ln.Addr().String(), "database", a.db.Engine(), "version", version)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// background keeps signing keys fresh (rotation, keys added by other
// instances) and prunes stale counters until ctx ends.
func (a *app) background(ctx context.Context) {
	keys := time.NewTicker(30 * time.Second)
	prune := time.NewTicker(10 * time.Minute)
	defer keys.Stop()
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keys.C:
			if err := a.tokens.Load(ctx, time.Now()); err != nil && ctx.Err() == nil {
				a.logger.Error("reload signing keys", "err", err)
			}
		case <-prune.C:
			if err := a.db.PruneCounters(ctx, time.Now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
				a.logger.Error("prune counters", "err", err)
			}
		}
	}
}

func printVars(w io.Writer) {
	for _, v := range config.Vars() {
		def := v.Default
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(w, "  %-34s %s\n  %-34s default: %s\n", v.Name, v.Description, "", strings.TrimSpace(def))
	}
}
