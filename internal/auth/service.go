package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/twostep-auth/twostep/internal/backupcode"
	"github.com/twostep-auth/twostep/internal/password"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/token"
)

// Config holds the rules the service applies. Zero values are not
// defaulted: cmd/twostep fills every field from config.Config.
type Config struct {
	Issuer       string // TOTP issuer label
	AccessTTL    time.Duration
	RefreshTTL   time.Duration
	ChallengeTTL time.Duration
	SudoTTL      time.Duration

	// ChallengeMaxAttempts wrong codes kill a challenge (5).
	ChallengeMaxAttempts int
	// LockoutThreshold wrong second-factor codes in a row, across
	// challenges, lock the account's second factor for LockoutDuration.
	LockoutThreshold int
	LockoutDuration  time.Duration

	// LoginFreeFailures failed passwords in a row are allowed without delay;
	// after that each attempt waits twice as long as the one before, up to
	// LoginMaxDelay; after LoginMaxFailures in a row password login for the
	// account stops until an administrator unlocks it.
	LoginFreeFailures int
	LoginMaxFailures  int
	LoginMaxDelay     time.Duration
	// LoginIPLimit caps password logins (and sign-ups) per client IP per
	// minute; 0 disables the cap.
	LoginIPLimit int

	// SMS are the rules for SMS and voice codes.
	SMS SMSConfig
}

// Deps are the service's collaborators.
type Deps struct {
	Store     Store
	Passwords *password.Hasher
	Tokens    *token.Keyring
	Sealer    *seal.Keyring
	// BackupKey keys the HMAC over backup codes.
	BackupKey []byte
	// SMSKey keys the HMAC over SMS codes.
	SMSKey []byte
	// SMS sends texts and places calls; nil means no phone features.
	SMS SMSSender
	// SMSMetrics counts sends for /metrics; nil counts nothing.
	SMSMetrics SMSMetrics
	Logger     *slog.Logger
	// Now and Rand default to time.Now and crypto/rand.Reader; tests set
	// them.
	Now  func() time.Time
	Rand io.Reader
}

// Service implements every account and second-factor use case. It is safe
// for concurrent use.
type Service struct {
	store      Store
	passwords  *password.Hasher
	tokens     *token.Keyring
	sealer     *seal.Keyring
	backup     backupcode.Hasher
	smsKey     []byte
	sender     SMSSender
	smsMetrics SMSMetrics
	sms        SMSConfig
	logger     *slog.Logger
	cfg        Config
	now        func() time.Time
	rand       io.Reader
	// policyCache holds the administrator's settings (see policy).
	policyCache settingsCache
}

// NewService returns a Service over d applying cfg. It fails only on a
// backup-code key shorter than 32 bytes.
func NewService(d Deps, cfg Config) (*Service, error) {
	backup, err := backupcode.NewHasher(d.BackupKey)
	if err != nil {
		return nil, fmt.Errorf("backup-code key: %w", err)
	}
	s := &Service{
		store:      d.Store,
		passwords:  d.Passwords,
		tokens:     d.Tokens,
		sealer:     d.Sealer,
		backup:     backup,
		smsKey:     d.SMSKey,
		sender:     d.SMS,
		smsMetrics: d.SMSMetrics,
		sms:        cfg.SMS,
		logger:     d.Logger,
		cfg:        cfg,
		now:        d.Now,
		rand:       d.Rand,
	}
	if s.smsMetrics == nil {
		s.smsMetrics = noSMSMetrics{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Config returns the rules the service applies.
func (s *Service) Config() Config { return s.cfg }

// RequestMeta describes where a request came from, for throttling and audit.
type RequestMeta struct {
	IP        string
	UserAgent string
}

// Tokens is a fresh access and refresh token pair.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds until the access token expires
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Service) newID() string {
	id, err := uuid.NewV7FromReader(s.rand)
	if err != nil {
		// uuid only fails when the reader fails; crypto/rand does not.
		panic(fmt.Sprintf("auth: new id: %v", err))
	}
	return id.String()
}

// opaque returns a new random token of n bytes, base64url without padding,
// and the SHA-256 under which it is stored.
func (s *Service) opaque(n int) (string, []byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", nil, fmt.Errorf("read random: %w", err)
	}
	raw := base64.RawURLEncoding.EncodeToString(b)
	return raw, hashToken(raw), nil
}

func hashToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

func (s *Service) event(typ, userID string, meta RequestMeta, detail map[string]any) AuditEvent {
	return AuditEvent{
		ID:        s.newID(),
		Time:      s.clock(),
		Type:      typ,
		UserID:    userID,
		IP:        meta.IP,
		UserAgent: truncate(meta.UserAgent, 512),
		Detail:    detail,
	}
}

// audit appends e outside any transaction; a failure is logged, not
// returned, because the action it records has already happened.
func (s *Service) audit(ctx context.Context, e AuditEvent) {
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.logger.ErrorContext(ctx, "append audit event", "event", e.Type, "user_id", e.UserID, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Principal is the authenticated caller of a request.
type Principal struct {
	User    User
	Session Session
	Claims  token.Claims
}

type principalKey struct{}

// WithPrincipal returns a context that carries p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal WithPrincipal stored.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
