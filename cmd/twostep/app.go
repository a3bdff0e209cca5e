package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/config"
	"github.com/twostep-auth/twostep/internal/httpapi"
	"github.com/twostep-auth/twostep/internal/password"
	"github.com/twostep-auth/twostep/internal/redisstore"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/token"
)

// app is everything serve and admin need, built from the configuration.
type app struct {
	cfg    config.Config
	logger *slog.Logger
	db     *sqlstore.DB
	sealer *seal.Keyring
	tokens *token.Keyring
	svc    *auth.Service
	sms    smsSetup
	// metrics are shared by the service (SMS counts) and the HTTP server.
	metrics *httpapi.Metrics
	// redis is set when TWOSTEP_REDIS_URL is: it then holds the
	// short-lived counters shared by every instance.
	redis *redis.Client
}

func (a *app) Close() error {
	if a.redis != nil {
		a.redis.Close()
	}
	return a.db.Close()
}

// Ready reports whether the database and, when configured, Redis answer.
func (a *app) Ready(ctx context.Context) error {
	if err := a.db.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if a.redis != nil {
		if err := a.redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}

// store is what the service runs on: the SQL database, with the counters
// in Redis when it is configured.
func (a *app) store(ctx context.Context) (auth.Store, error) {
	if a.cfg.Redis.URL == "" {
		return a.db, nil
	}
	opts, err := redis.ParseURL(a.cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("TWOSTEP_REDIS_URL: %w", err)
	}
	// Fail fast while Redis is down: requests that need it answer 503 at
	// once instead of queueing behind retries; the client reconnects by
	// itself when Redis is back.
	opts.MaxRetries = 1
	// One dial per attempt: go-redis otherwise dials 5 times 100 ms apart,
	// and with the retry above a request waits about a second for its 503.
	opts.DialerRetries = 1
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	a.redis = redis.NewClient(opts)
	if err := a.redis.Ping(ctx).Err(); err != nil {
		a.logger.Warn("redis does not answer yet; requests that need it fail until it does", "err", err)
	}
	// Attempt counters never expire on their own: a lock that must last
	// until an administrator lifts it would otherwise lapse.
	return redisstore.Split(a.db, redisstore.New(a.redis, a.cfg.Redis.Prefix, redisstore.Options{AttemptTTL: -1})), nil
}

// loadConfig reads the configuration and reports every problem at once.
func loadConfig(path string, getenv func(string) string) (config.Config, error) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return config.Config{}, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// buildApp opens the database and builds the service. With migrate (or on
// SQLite, where serve needs no set-up) it applies migrations; otherwise it
// refuses an out-of-date schema.
func buildApp(ctx context.Context, cfg config.Config, logger *slog.Logger, migrate bool) (*app, error) {
	db, err := sqlstore.Open(ctx, cfg.DB.URL, sqlstore.Options{MaxOpenConns: cfg.DB.MaxConns, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	a := &app{cfg: cfg, logger: logger, db: db, metrics: httpapi.NewMetrics()}
	if err := a.init(ctx, migrate); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) init(ctx context.Context, migrate bool) error {
	cfg := a.cfg
	if migrate || a.db.Engine() == "sqlite" {
		applied, err := a.db.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if len(applied) > 0 {
			a.logger.Info("applied migrations", "versions", applied)
		}
	}
	if err := a.db.CheckSchema(ctx); err != nil {
		return err
	}
	sealer, err := loadSealer(cfg, a.logger)
	if err != nil {
		return err
	}
	a.sealer = sealer

	a.tokens = token.NewKeyring(a.db, sealer, token.Options{
		Issuer: cfg.Tokens.Issuer, Audience: cfg.Tokens.Audience,
		AccessTTL: cfg.Tokens.AccessTokenTTL, Rotation: cfg.Tokens.SigningKeyRotation, Logger: a.logger,
	})
	if err := a.tokens.Load(ctx, time.Now()); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	backupKey, err := a.db.ServerKey(ctx, "backup-code-hmac", sealer, rand.Reader)
	if err != nil {
		return fmt.Errorf("load backup-code key: %w", err)
	}
	smsKey, err := a.db.ServerKey(ctx, "sms-code-hmac", sealer, rand.Reader)
	if err != nil {
		return fmt.Errorf("load sms-code key: %w", err)
	}
	a.sms, err = newSMS(cfg, a.logger)
	if err != nil {
		return err
	}
	params := password.Params{
		MemoryKiB: uint32(cfg.Argon2.MemoryKiB), Iterations: uint32(cfg.Argon2.Iterations),
		Parallelism: uint8(cfg.Argon2.Parallelism), SaltLen: 16, KeyLen: 32,
	}
	if cfg.Argon2.AllowWeak {
		a.logger.Warn("weak password-hash settings allowed (TWOSTEP_ARGON2_ALLOW_WEAK): for tests and benchmarks only", "memory_kib", params.MemoryKiB, "iterations", params.Iterations)
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	a.svc, err = auth.NewService(auth.Deps{
		Store:      store,
		Passwords:  password.NewHasher(params, cfg.Argon2.MaxConcurrent),
		Tokens:     a.tokens,
		Sealer:     sealer,
		BackupKey:  backupKey,
		SMSKey:     smsKey,
		SMS:        a.sms.sender,
		SMSMetrics: a.metrics,
		Logger:     a.logger,
	}, auth.Config{
		Issuer:               cfg.Tokens.Issuer,
		AccessTTL:            cfg.Tokens.AccessTokenTTL,
		RefreshTTL:           cfg.Tokens.RefreshTokenTTL,
		ChallengeTTL:         cfg.Tokens.ChallengeTTL,
		SudoTTL:              cfg.TwoFA.SudoTTL,
		ChallengeMaxAttempts: 5,
		LockoutThreshold:     cfg.TwoFA.LockoutThreshold,
		LockoutDuration:      cfg.TwoFA.LockoutDuration,
		LoginFreeFailures:    cfg.Login.FreeFailures,
		LoginMaxFailures:     cfg.Login.MaxFailures,
		LoginMaxDelay:        cfg.Login.MaxDelay,
		LoginIPLimit:         cfg.Login.IPLimit,
		SMS: auth.SMSConfig{
			CodeTTL:          cfg.TwoFA.SMSCodeTTL,
			ResendCooldown:   cfg.TwoFA.SMSResendCooldown,
			HourlyLimit:      cfg.TwoFA.SMSHourlyLimit,
			PhoneDailyLimit:  cfg.TwoFA.SMSPhoneDailyLimit,
			IPHourlyLimit:    cfg.TwoFA.SMSIPHourlyLimit,
			DailyLimit:       cfg.TwoFA.SMSDailyLimit,
			AllowedCountries: cfg.TwoFA.SMSAllowedCountries,
			MaxAttempts:      5,
			Template:         cfg.TwoFA.SMSTemplate,
			Host:             webOTPHost(cfg),
			CallEnabled:      a.sms.callEnabled,
		},
	})
	return err
}

// loadSealer builds the keyring for secrets at rest from
// TWOSTEP_ENCRYPTION_KEY, or, for the embedded default, from a key file
// beside the database that is made on first start.
func loadSealer(cfg config.Config, logger *slog.Logger) (*seal.Keyring, error) {
	var keys []seal.Key
	if cfg.Secrets.EncryptionKey != "" {
		k, err := seal.ParseKeys(cfg.Secrets.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("TWOSTEP_ENCRYPTION_KEY: %w", err)
		}
		keys = k
	} else {
		path := cfg.KeyFilePath()
		if path == "" {
			return nil, errors.New("TWOSTEP_ENCRYPTION_KEY is required with PostgreSQL")
		}
		k, created, err := seal.LoadOrCreateKeyFile(path, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("encryption key file: %w", err)
		}
		if created {
			logger.Warn("created an encryption key for secrets at rest; back it up with the database, or set TWOSTEP_ENCRYPTION_KEY", "path", path)
		}
		keys = k
	}
	ring, err := seal.New(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("encryption keys: %w", err)
	}
	return ring, nil
}
