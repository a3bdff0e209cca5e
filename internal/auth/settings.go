package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// settingsReload is how old a Service's copy of the settings may get before
// it reads them again. Settings live in the database, so every instance
// sharing it picks up a change made by another within this interval; the
// instance that made the change applies it at once.
const settingsReload = 5 * time.Second

// Settings is the administrator's 2FA policy.
//
// Turning a method off stops new enrolments of it and stops offering it to
// users who have another method left. A user whose every factor uses a
// method that is off keeps signing in with it until they enrol another, so
// no setting strands anyone; the same holds when TwoFaEnabled is false,
// which stops new enrolments but does not silently remove the second factor
// of accounts that have one (reset those one by one if that is meant).
type Settings struct {
	// TwoFaEnabled lets users enrol second factors at all.
	TwoFaEnabled bool
	// Authenticator, SMS and Call allow authenticator apps, codes by text
	// message and codes by voice call. An SMS factor (a phone) can be
	// enrolled while SMS or Call is on.
	Authenticator bool
	SMS           bool
	Call          bool
	// BackupCodes lets users hold and use backup codes.
	BackupCodes bool
	// RequiredForRoles are the roles whose users must have a second factor:
	// without one, a sign-in gets tokens that may only enrol one.
	RequiredForRoles []string
	// SudoMinutes is how long a session stays in sudo mode after it last
	// passed a second factor (1 to 1440). Until settings are first saved,
	// the configured SudoTTL applies as it is.
	SudoMinutes int
}

// SettingsChange is a partial update of Settings: nil fields keep their
// value; RequiredForRoles, when not nil, replaces the whole list.
type SettingsChange struct {
	TwoFaEnabled     *bool
	Authenticator    *bool
	SMS              *bool
	Call             *bool
	BackupCodes      *bool
	RequiredForRoles *[]string
	SudoMinutes      *int
}

// SettingsRecord is the stored form of the settings: a JSON document that
// only auth reads and writes, and its version (1 for the first save, one
// more for each change).
type SettingsRecord struct {
	Document  []byte
	Version   int64
	UpdatedAt time.Time
}

// knownRoles are the roles RequiredForRoles may name.
var knownRoles = []string{RoleUser, RoleAdmin}

// defaultSettings are the settings before an administrator saves any:
// everything on, 2FA required for admins, and sudo as long as the
// configured SudoTTL (rounded up to whole minutes).
func defaultSettings(cfg Config) Settings {
	sudo := 10
	if cfg.SudoTTL > 0 {
		sudo = int((cfg.SudoTTL + time.Minute - 1) / time.Minute)
		sudo = min(max(sudo, 1), 1440)
	}
	return Settings{
		TwoFaEnabled: true, Authenticator: true, SMS: true, Call: true, BackupCodes: true,
		RequiredForRoles: []string{RoleAdmin}, SudoMinutes: sudo,
	}
}

// methodOn reports whether the settings allow a second-factor method:
// MethodAuthenticator, MethodSMS, MethodCall or MethodBackup.
func (st Settings) methodOn(method string) bool {
	if !st.TwoFaEnabled {
		return false
	}
	switch method {
	case MethodAuthenticator:
		return st.Authenticator
	case MethodSMS:
		return st.SMS
	case MethodCall:
		return st.Call
	case MethodBackup:
		return st.BackupCodes
	}
	return false
}

// factorOn reports whether a factor of this kind (MethodAuthenticator or
// MethodSMS, a phone that takes texts and calls) can still be used.
func (st Settings) factorOn(factorMethod string) bool {
	if factorMethod == MethodSMS {
		return st.methodOn(MethodSMS) || st.methodOn(MethodCall)
	}
	return st.methodOn(factorMethod)
}

// requiresTwoFa reports whether a user holding one of roles must have a
// second factor.
func (st Settings) requiresTwoFa(roles []string) bool {
	if !st.TwoFaEnabled {
		return false
	}
	for _, r := range roles {
		if slices.Contains(st.RequiredForRoles, r) {
			return true
		}
	}
	return false
}

// apply returns st with ch applied, or a *ValidationError naming every
// field that is out of range.
func (st Settings) apply(ch SettingsChange) (Settings, error) {
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	out := st
	out.RequiredForRoles = slices.Clone(st.RequiredForRoles)
	set(&out.TwoFaEnabled, ch.TwoFaEnabled)
	set(&out.Authenticator, ch.Authenticator)
	set(&out.SMS, ch.SMS)
	set(&out.Call, ch.Call)
	set(&out.BackupCodes, ch.BackupCodes)
	problems := map[string]string{}
	if ch.RequiredForRoles != nil {
		roles := []string{}
		for _, r := range *ch.RequiredForRoles {
			switch {
			case !slices.Contains(knownRoles, r):
				problems["twoFa.requiredForRoles"] = fmt.Sprintf("unknown role %q: roles are user and admin", r)
			case slices.Contains(roles, r):
				problems["twoFa.requiredForRoles"] = fmt.Sprintf("role %q is listed twice", r)
			default:
				roles = append(roles, r)
			}
		}
		out.RequiredForRoles = roles
	}
	if ch.SudoMinutes != nil {
		if m := *ch.SudoMinutes; m < 1 || m > 1440 {
			problems["twoFa.sudoMinutes"] = "must be 1 to 1440"
		} else {
			out.SudoMinutes = m
		}
	}
	if len(problems) > 0 {
		return Settings{}, &ValidationError{Problems: problems}
	}
	return out, nil
}

// check refuses settings that would lock the users of a required role out
// (ErrConflict) or that contradict themselves (*ValidationError). canText
// says whether the server can send texts and calls, without which no phone
// can be enrolled.
func (st Settings) check(canText bool) error {
	// A required role with nothing to enrol would hold its users in
	// enrolment-only sessions for good: with admin among them, every admin
	// would be locked out.
	enrollable := st.methodOn(MethodAuthenticator) || (canText && st.factorOn(MethodSMS))
	if len(st.RequiredForRoles) > 0 && !enrollable {
		return fmt.Errorf("%w: requiredForRoles needs two-factor authentication on with a method users can enrol (authenticator, or sms or call with an SMS provider configured)", ErrConflict)
	}
	if st.TwoFaEnabled && !st.Authenticator && !st.SMS && !st.Call {
		return invalid("twoFa.methods", "at least one method must be on while two-factor authentication is enabled")
	}
	return nil
}

// SettingsDocument is the JSON form of Settings: as stored, as audited and
// as the API answers it (GET/PUT /admin/settings), so an operator reading
// the row sees what the API shows.
type SettingsDocument struct {
	TwoFa struct {
		Enabled bool `json:"enabled"`
		Methods struct {
			Authenticator bool `json:"authenticator"`
			SMS           bool `json:"sms"`
			Call          bool `json:"call"`
		} `json:"methods"`
		BackupCodes struct {
			Enabled bool `json:"enabled"`
		} `json:"backupCodes"`
		RequiredForRoles []string `json:"requiredForRoles"`
		SudoMinutes      int      `json:"sudoMinutes"`
	} `json:"twoFa"`
}

// Document returns st in its JSON form.
func (st Settings) Document() SettingsDocument {
	var d SettingsDocument
	d.TwoFa.Enabled = st.TwoFaEnabled
	d.TwoFa.Methods.Authenticator = st.Authenticator
	d.TwoFa.Methods.SMS = st.SMS
	d.TwoFa.Methods.Call = st.Call
	d.TwoFa.BackupCodes.Enabled = st.BackupCodes
	d.TwoFa.RequiredForRoles = st.RequiredForRoles
	if d.TwoFa.RequiredForRoles == nil {
		d.TwoFa.RequiredForRoles = []string{}
	}
	d.TwoFa.SudoMinutes = st.SudoMinutes
	return d
}

func (d SettingsDocument) settings() Settings {
	return Settings{
		TwoFaEnabled: d.TwoFa.Enabled, Authenticator: d.TwoFa.Methods.Authenticator,
		SMS: d.TwoFa.Methods.SMS, Call: d.TwoFa.Methods.Call, BackupCodes: d.TwoFa.BackupCodes.Enabled,
		RequiredForRoles: d.TwoFa.RequiredForRoles, SudoMinutes: d.TwoFa.SudoMinutes,
	}
}

// decodeSettings reads a stored document over the defaults, so that a
// field a newer release adds keeps its default in an older document.
func decodeSettings(def Settings, doc []byte) (Settings, error) {
	d := def.Document()
	if err := json.Unmarshal(doc, &d); err != nil {
		return Settings{}, fmt.Errorf("decode settings: %w", err)
	}
	st := d.settings()
	st.SudoMinutes = min(max(st.SudoMinutes, 1), 1440)
	return st, nil
}

// settingsCache is a Service's copy of the stored settings.
type settingsCache struct {
	mu       sync.Mutex
	cur      Settings
	version  int64 // of cur; 0 when nothing is stored (cur is the defaults)
	loadedAt time.Time
	loaded   bool
	loading  bool // a reload is under way: others use cur meanwhile
}

// policy returns the settings in force. It reads the database when its copy
// is older than settingsReload (one caller reloads while the others go on
// with the copy they have). When the database cannot be read it logs that
// and keeps the last settings it read, or the defaults before any.
func (s *Service) policy(ctx context.Context) Settings {
	st, _ := s.policyVersion(ctx)
	return st
}

func (s *Service) policyVersion(ctx context.Context) (Settings, int64) {
	c := &s.policyCache
	now := s.clock()
	c.mu.Lock()
	if c.loaded && (c.loading || now.Sub(c.loadedAt) < settingsReload) {
		defer c.mu.Unlock()
		return c.cur, c.version
	}
	c.loading = true
	c.mu.Unlock()

	st, version, err := s.loadSettings(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.loading = false
	if err != nil {
		s.logger.ErrorContext(ctx, "load settings; using the last known", "err", err)
		if c.loaded {
			return c.cur, c.version
		}
		return defaultSettings(s.cfg), 0
	}
	c.remember(st, version, now)
	return c.cur, c.version
}

// remember keeps st unless the copy already holds a newer version (a
// reload that raced with a local save).
func (c *settingsCache) remember(st Settings, version int64, now time.Time) {
	if c.loaded && version < c.version {
		return
	}
	c.cur, c.version, c.loadedAt, c.loaded = st, version, now, true
}

func (s *Service) loadSettings(ctx context.Context) (Settings, int64, error) {
	def := defaultSettings(s.cfg)
	rec, err := s.store.Settings(ctx)
	if errors.Is(err, ErrNotFound) {
		return def, 0, nil
	}
	if err != nil {
		return Settings{}, 0, fmt.Errorf("load settings: %w", err)
	}
	st, err := decodeSettings(def, rec.Document)
	if err != nil {
		return Settings{}, 0, err
	}
	return st, rec.Version, nil
}

// sudoTTL is how long sudo lasts: the configured SudoTTL until an
// administrator saves settings, then their SudoMinutes.
func (s *Service) sudoTTL(ctx context.Context) time.Duration {
	st, version := s.policyVersion(ctx)
	if version == 0 && s.cfg.SudoTTL > 0 {
		return s.cfg.SudoTTL
	}
	return time.Duration(st.SudoMinutes) * time.Minute
}

// allowedMethods drops from a login's methods those the settings turn off,
// unless that would leave the user no second factor: then they keep all
// they have (they are stranded until they enrol an allowed method).
func (s *Service) allowedMethods(ctx context.Context, methods []string) []string {
	if len(methods) == 0 {
		return methods
	}
	st := s.policy(ctx)
	var kept []string
	factorLeft := false
	for _, m := range methods {
		if st.methodOn(m) {
			kept = append(kept, m)
			factorLeft = factorLeft || m != MethodBackup
		}
	}
	if !factorLeft {
		return methods
	}
	return kept
}

// checkMethodAllowed refuses (ErrForbidden) a second-factor method the
// settings turn off, named explicitly by a user who has another method
// still on. A user with nothing else (or no method named) goes ahead.
func (s *Service) checkMethodAllowed(ctx context.Context, conf []Factor, method string) error {
	switch method {
	case MethodAuthenticator, MethodSMS, MethodCall, MethodBackup:
	default:
		return nil // none named, or a name the caller refuses as bad input
	}
	st := s.policy(ctx)
	if st.methodOn(method) {
		return nil
	}
	for _, f := range conf {
		if st.factorOn(f.Method) {
			return fmt.Errorf("%w: %s is turned off in the settings; use another method", ErrForbidden, method)
		}
	}
	return nil
}

// checkEnrolAllowed refuses (ErrForbidden) to start enrolling a factor of
// method (MethodAuthenticator or MethodSMS) that the settings turn off.
func (s *Service) checkEnrolAllowed(ctx context.Context, method string) error {
	if !s.policy(ctx).factorOn(method) {
		return fmt.Errorf("%w: %s is turned off in the settings", ErrForbidden, method)
	}
	return nil
}

// backupCodesOn reports whether users may get and use backup codes.
func (s *Service) backupCodesOn(ctx context.Context) bool {
	return s.policy(ctx).methodOn(MethodBackup)
}

// checkBackupCodesOn refuses (ErrForbidden) new backup codes when the
// settings turn them off.
func (s *Service) checkBackupCodesOn(ctx context.Context) error {
	if !s.backupCodesOn(ctx) {
		return fmt.Errorf("%w: backup codes are turned off in the settings", ErrForbidden)
	}
	return nil
}

// enrollmentRequired reports whether u, who has no second factor, must
// enrol one before using anything else.
func (s *Service) enrollmentRequired(ctx context.Context, u User) bool {
	return s.policy(ctx).requiresTwoFa(u.Roles)
}

// endEnrollmentOnly lifts the enrolment-only restriction of sess, in the
// transaction that confirms its first factor.
func (s *Service) endEnrollmentOnly(ctx context.Context, tx Tx, sess Session) error {
	if !sess.EnrollmentOnly {
		return nil
	}
	return tx.SetSessionEnrollmentOnly(ctx, sess.ID, false)
}

// Settings returns the settings in force. Only an administrator may read
// them (ErrForbidden).
func (s *Service) Settings(ctx context.Context, admin Principal) (Settings, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return Settings{}, err
	}
	return s.policy(ctx), nil
}

// SettingsResult answers a settings change.
type SettingsResult struct {
	Settings Settings
	// StrandedUsers counts users whose every second factor uses a method
	// the new settings turn off. They keep signing in with it until they
	// enrol another.
	StrandedUsers int
}

// maxSettingsRetries bounds how often UpdateSettings starts again when
// another change was saved between its read and its write.
const maxSettingsRetries = 5

// UpdateSettings applies ch to the stored settings (administrators only).
// Out-of-range values are a *ValidationError; settings that would lock out
// the users of a required role (admins by default: 2FA required with no
// method they could enrol) are ErrConflict. A change is audited as
// settings.changed with the settings before and after, and applied by this
// instance at once (by others within settingsReload); a change to what is
// already in force saves and audits nothing.
func (s *Service) UpdateSettings(ctx context.Context, admin Principal, ch SettingsChange, meta RequestMeta) (SettingsResult, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return SettingsResult{}, err
	}
	for range maxSettingsRetries {
		// Read the stored row itself, not the cache: the change must apply
		// to the latest settings, and the save below checks that version.
		before, version, err := s.loadSettings(ctx)
		if err != nil {
			return SettingsResult{}, err
		}
		after, err := before.apply(ch)
		if err != nil {
			return SettingsResult{}, err
		}
		if err := after.check(s.sender != nil); err != nil {
			return SettingsResult{}, err
		}
		if !after.equal(before) {
			err = s.saveSettings(ctx, admin, before, after, version, meta)
			if errors.Is(err, ErrConflict) {
				continue // saved by someone else meanwhile: start again
			}
			if err != nil {
				return SettingsResult{}, err
			}
		}
		n, err := s.store.CountStrandedUsers(ctx, usableFactorMethods(after))
		if err != nil {
			return SettingsResult{}, fmt.Errorf("count stranded users: %w", err)
		}
		return SettingsResult{Settings: after, StrandedUsers: n}, nil
	}
	return SettingsResult{}, fmt.Errorf("update settings: %w: the settings keep changing; try again", ErrConflict)
}

func (st Settings) equal(o Settings) bool {
	return st.TwoFaEnabled == o.TwoFaEnabled && st.Authenticator == o.Authenticator && st.SMS == o.SMS &&
		st.Call == o.Call && st.BackupCodes == o.BackupCodes && st.SudoMinutes == o.SudoMinutes &&
		slices.Equal(st.RequiredForRoles, o.RequiredForRoles)
}

// saveSettings stores after as the version following version and audits
// the change in the same transaction; ErrConflict when version is no
// longer the latest.
func (s *Service) saveSettings(ctx context.Context, admin Principal, before, after Settings, version int64, meta RequestMeta) error {
	raw, err := json.Marshal(after.Document())
	if err != nil {
		return fmt.Errorf("encode settings: %w", err)
	}
	now := s.clock()
	rec := SettingsRecord{Document: raw, Version: version + 1, UpdatedAt: now}
	ev := s.adminEvent(EventSettingsChanged, "", admin, meta, map[string]any{
		"before": before.Document(), "after": after.Document(), "version": rec.Version,
	})
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.SaveSettings(ctx, rec); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	})
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	c := &s.policyCache
	c.mu.Lock()
	c.remember(after, rec.Version, now)
	c.mu.Unlock()
	return nil
}

// usableFactorMethods lists the kinds of factor (MethodAuthenticator,
// MethodSMS) that st still lets users sign in with.
func usableFactorMethods(st Settings) []string {
	var out []string
	for _, m := range []string{MethodAuthenticator, MethodSMS} {
		if st.factorOn(m) {
			out = append(out, m)
		}
	}
	return out
}
