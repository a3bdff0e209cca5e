package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/token"
)

// TestConformance runs the storage conformance suite on every engine.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			runConformance(t, func(t *testing.T) *sqlstore.DB { return sqltest.Open(t, engine) })
		})
	}
}

// t0 is the suite's fixed instant; tests advance it explicitly.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// equate compares stored values: nil and empty slices and maps alike.
var equate = cmpopts.EquateEmpty()

func ptr[T any](v T) *T { return &v }

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// runConformance checks that what open returns behaves as auth.Store and
// token.KeyStore require. Every subtest gets its own database.
func runConformance(t *testing.T, open func(t *testing.T) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *sqlstore.DB)
	}{
		{"Users", testUsers},
		{"UserConflicts", testUserConflicts},
		{"TwoFaEnabled", testTwoFaEnabled},
		{"Sessions", testSessions},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"RefreshTokens", testRefreshTokens},
		{"Challenges", testChallenges},
		{"Factors", testFactors},
		{"BackupCodes", testBackupCodes},
		{"SMSCodes", testSMSCodes},
		{"UserPhone", testUserPhone},
		{"Audit", testAudit},
		{"Attempts", testAttempts},
		{"Windows", testWindows},
		{"PruneCounters", testPruneCounters},
		{"SigningKeys", testSigningKeys},
		{"ServerKeys", testServerKeys},
		{"WithTx", testWithTx},
		{"WithTxRollback", testWithTxRollback},
		{"TimePrecision", testTimePrecision},
		{"SingleUseConcurrent", testSingleUseConcurrent},
		{"ReserveChallengeAttemptConcurrent", testReserveChallengeAttemptConcurrent},
		{"ReserveAttemptConcurrent", testReserveAttemptConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func newUser(t *testing.T, db *sqlstore.DB, name string) auth.User {
	t.Helper()
	u := auth.User{
		ID:           "user-" + name,
		Email:        name + "@example.com",
		Username:     name,
		Phone:        "+14155552671",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Roles:        []string{auth.RoleUser},
		CreatedAt:    t0,
		UpdatedAt:    t0,
	}
	if err := db.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%q) = %v", u.ID, err)
	}
	return u
}

func newSession(t *testing.T, db *sqlstore.DB, id, userID string) auth.Session {
	t.Helper()
	s := auth.Session{
		ID:        id,
		UserID:    userID,
		CreatedAt: t0,
		ExpiresAt: t0.Add(30 * 24 * time.Hour),
		AuthAt:    t0,
		AMR:       []string{auth.AMRPassword},
		IP:        "192.0.2.1",
		UserAgent: "test",
	}
	if err := db.CreateSession(t.Context(), s); err != nil {
		t.Fatalf("CreateSession(%q) = %v", id, err)
	}
	return s
}

func newFactor(t *testing.T, db *sqlstore.DB, id, userID string, confirmed bool) auth.Factor {
	t.Helper()
	f := auth.Factor{
		ID:           id,
		UserID:       userID,
		Method:       auth.MethodAuthenticator,
		Label:        "phone app",
		SealedSecret: []byte("sealed"),
		CreatedAt:    t0,
	}
	if confirmed {
		f.ConfirmedAt = ptr(t0)
	}
	if err := db.CreateFactor(t.Context(), f); err != nil {
		t.Fatalf("CreateFactor(%q) = %v", id, err)
	}
	return f
}

func testUsers(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	want := auth.User{
		ID:            "u1",
		Email:         "alice@example.com",
		Username:      "alice",
		Phone:         "+14155552671",
		PhoneVerified: true,
		PasswordHash:  "$argon2id$hash",
		Roles:         []string{auth.RoleUser, auth.RoleAdmin},
		Disabled:      true,
		CreatedAt:     t0,
		UpdatedAt:     t0.Add(time.Second),
	}
	if err := db.CreateUser(ctx, want); err != nil {
		t.Fatalf("CreateUser = %v", err)
	}
	lookups := []struct {
		name string
		get  func() (auth.User, error)
	}{
		{"UserByID", func() (auth.User, error) { return db.UserByID(ctx, "u1") }},
		{"UserByEmail", func() (auth.User, error) { return db.UserByEmail(ctx, "alice@example.com") }},
		{"UserByEmail upper case", func() (auth.User, error) { return db.UserByEmail(ctx, "Alice@Example.COM") }},
		{"UserByUsername", func() (auth.User, error) { return db.UserByUsername(ctx, "alice") }},
	}
	for _, l := range lookups {
		got, err := l.get()
		if err != nil {
			t.Fatalf("%s = %v", l.name, err)
		}
		if diff := cmp.Diff(want, got, equate); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", l.name, diff)
		}
	}

	// A user with only a phone: no email, username or password.
	bare := auth.User{ID: "u2", Phone: "+14155550000", CreatedAt: t0, UpdatedAt: t0}
	if err := db.CreateUser(ctx, bare); err != nil {
		t.Fatalf("CreateUser(no email) = %v", err)
	}
	got, err := db.UserByID(ctx, "u2")
	if err != nil {
		t.Fatalf("UserByID(u2) = %v", err)
	}
	if diff := cmp.Diff(bare, got, equate); diff != "" {
		t.Errorf("UserByID(u2) mismatch (-want +got):\n%s", diff)
	}
	var nulls int
	err = db.SQL().QueryRowContext(ctx,
		`SELECT count(*) FROM users WHERE id = 'u2' AND email IS NULL AND username IS NULL AND password_hash IS NULL`).Scan(&nulls)
	if err != nil || nulls != 1 {
		t.Errorf("empty email, username and password hash stored as NULL: count = %d, %v; want 1", nulls, err)
	}

	later := t0.Add(time.Hour)
	if err := db.UpdatePasswordHash(ctx, "u1", "$argon2id$new", later); err != nil {
		t.Fatalf("UpdatePasswordHash = %v", err)
	}
	got, err = db.UserByID(ctx, "u1")
	if err != nil {
		t.Fatalf("UserByID = %v", err)
	}
	if got.PasswordHash != "$argon2id$new" || !got.UpdatedAt.Equal(later) {
		t.Errorf("after UpdatePasswordHash: hash %q, updated %v; want %q, %v", got.PasswordHash, got.UpdatedAt, "$argon2id$new", later)
	}
	if err := db.UpdatePasswordHash(ctx, "nobody", "x", later); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("UpdatePasswordHash(nobody) = %v, want ErrNotFound", err)
	}

	notFound := []struct {
		name string
		get  func() (auth.User, error)
	}{
		{"UserByID", func() (auth.User, error) { return db.UserByID(ctx, "nobody") }},
		{"UserByEmail", func() (auth.User, error) { return db.UserByEmail(ctx, "nobody@example.com") }},
		{"UserByUsername", func() (auth.User, error) { return db.UserByUsername(ctx, "nobody") }},
		{"UserByEmail empty", func() (auth.User, error) { return db.UserByEmail(ctx, "") }},
	}
	for _, l := range notFound {
		if _, err := l.get(); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s = %v, want ErrNotFound", l.name, err)
		}
	}
}

func testUserConflicts(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	newUser(t, db, "bob")
	tests := []struct {
		name string
		u    auth.User
	}{
		{"same email", auth.User{ID: "x1", Email: "bob@example.com"}},
		{"same email in other case", auth.User{ID: "x2", Email: "BOB@Example.com"}},
		{"same username", auth.User{ID: "x3", Username: "bob"}},
		{"same username in other case", auth.User{ID: "x4", Username: "Bob"}},
		{"same id", auth.User{ID: "user-bob", Email: "other@example.com"}},
	}
	for _, tt := range tests {
		tt.u.CreatedAt, tt.u.UpdatedAt = t0, t0
		if err := db.CreateUser(ctx, tt.u); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("CreateUser(%s) = %v, want ErrConflict", tt.name, err)
		}
	}
	// Users without email or username do not collide.
	for _, id := range []string{"p1", "p2"} {
		if err := db.CreateUser(ctx, auth.User{ID: id, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Errorf("CreateUser(%s, no email) = %v", id, err)
		}
	}
	if err := db.CreateUser(ctx, auth.User{ID: "bad", Roles: []string{"a,b"}}); err == nil {
		t.Errorf("CreateUser(role with comma) = nil, want error")
	}
}

func testTwoFaEnabled(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "carol")
	check := func(when string, want bool) {
		t.Helper()
		got, err := db.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatalf("UserByID = %v", err)
		}
		if got.TwoFaEnabled != want {
			t.Errorf("%s: UserByID().TwoFaEnabled = %v, want %v", when, got.TwoFaEnabled, want)
		}
		newSession(t, db, "s-"+when, u.ID)
		_, su, err := db.SessionWithUser(ctx, "s-"+when)
		if err != nil {
			t.Fatalf("SessionWithUser = %v", err)
		}
		if su.TwoFaEnabled != want {
			t.Errorf("%s: SessionWithUser().TwoFaEnabled = %v, want %v", when, su.TwoFaEnabled, want)
		}
	}
	check("none", false)
	newFactor(t, db, "f-pending", u.ID, false)
	check("pending", false)
	if err := db.ConfirmFactor(ctx, "f-pending", t0); err != nil {
		t.Fatalf("ConfirmFactor = %v", err)
	}
	check("confirmed", true)
}

func testSessions(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "dave")
	want := auth.Session{
		ID:             "s1",
		UserID:         u.ID,
		CreatedAt:      t0,
		ExpiresAt:      t0.Add(time.Hour),
		AuthAt:         t0.Add(-time.Second),
		SecondFactorAt: ptr(t0.Add(time.Second)),
		AMR:            []string{auth.AMRPassword, auth.AMROTP},
		IP:             "2001:db8::1",
		UserAgent:      "Mozilla/5.0",
		EnrollmentOnly: true,
	}
	if err := db.CreateSession(ctx, want); err != nil {
		t.Fatalf("CreateSession = %v", err)
	}
	got, gotUser, err := db.SessionWithUser(ctx, "s1")
	if err != nil {
		t.Fatalf("SessionWithUser = %v", err)
	}
	if diff := cmp.Diff(want, got, equate); diff != "" {
		t.Errorf("SessionWithUser session mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(u, gotUser, equate); diff != "" {
		t.Errorf("SessionWithUser user mismatch (-want +got):\n%s", diff)
	}
	if _, _, err := db.SessionWithUser(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SessionWithUser(nope) = %v, want ErrNotFound", err)
	}
	if err := db.CreateSession(ctx, auth.Session{ID: "s2", UserID: "ghost"}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("CreateSession(unknown user) = %v, want ErrNotFound", err)
	}
	if err := db.CreateSession(ctx, want); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("CreateSession(same id) = %v, want ErrConflict", err)
	}

	at := t0.Add(time.Minute)
	if err := db.MarkSecondFactor(ctx, "s1", at, []string{auth.AMRPassword, auth.AMRSMS}); err != nil {
		t.Fatalf("MarkSecondFactor = %v", err)
	}
	if err := db.ExtendSession(ctx, "s1", t0.Add(2*time.Hour)); err != nil {
		t.Fatalf("ExtendSession = %v", err)
	}
	got, _, err = db.SessionWithUser(ctx, "s1")
	if err != nil {
		t.Fatalf("SessionWithUser = %v", err)
	}
	want.SecondFactorAt = &at
	want.AMR = []string{auth.AMRPassword, auth.AMRSMS}
	want.ExpiresAt = t0.Add(2 * time.Hour)
	if diff := cmp.Diff(want, got, equate); diff != "" {
		t.Errorf("after MarkSecondFactor and ExtendSession (-want +got):\n%s", diff)
	}
	if err := db.MarkSecondFactor(ctx, "nope", at, nil); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("MarkSecondFactor(nope) = %v, want ErrNotFound", err)
	}
	if err := db.ExtendSession(ctx, "nope", at); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ExtendSession(nope) = %v, want ErrNotFound", err)
	}

	revokedAt := t0.Add(3 * time.Minute)
	for i, want := range []bool{true, false} {
		ok, err := db.RevokeSession(ctx, "s1", revokedAt.Add(time.Duration(i)*time.Minute))
		if err != nil || ok != want {
			t.Errorf("RevokeSession #%d = %v, %v; want %v, nil", i+1, ok, err, want)
		}
	}
	got, _, err = db.SessionWithUser(ctx, "s1")
	if err != nil {
		t.Fatalf("SessionWithUser = %v", err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt) {
		t.Errorf("RevokedAt = %v, want %v (the first revocation)", got.RevokedAt, revokedAt)
	}
	if ok, err := db.RevokeSession(ctx, "nope", revokedAt); ok || err != nil {
		t.Errorf("RevokeSession(nope) = %v, %v; want false, nil", ok, err)
	}
}

func testRevokeUserSessions(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "erin")
	other := newUser(t, db, "frank")
	for _, id := range []string{"keep", "a", "b"} {
		newSession(t, db, id, u.ID)
	}
	newSession(t, db, "other", other.ID)
	expired := newSession(t, db, "expired", u.ID)
	if err := db.ExtendSession(ctx, expired.ID, t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeSession(ctx, "b", t0); err != nil {
		t.Fatal(err)
	}

	at := t0.Add(time.Minute)
	n, err := db.RevokeUserSessions(ctx, u.ID, "keep", at)
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions(except keep) = %d, %v; want 1, nil", n, err)
	}
	wantRevoked := map[string]*time.Time{"keep": nil, "a": &at, "b": &t0, "other": nil, "expired": nil}
	for id, want := range wantRevoked {
		s, _, err := db.SessionWithUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, s.RevokedAt); diff != "" {
			t.Errorf("session %s RevokedAt (-want +got):\n%s", id, diff)
		}
	}
	n, err = db.RevokeUserSessions(ctx, u.ID, "", at)
	if err != nil || n != 1 {
		t.Errorf("RevokeUserSessions(no exception) = %d, %v; want 1 (keep), nil", n, err)
	}
}

func testRefreshTokens(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "gina")
	newSession(t, db, "s1", u.ID)
	newSession(t, db, "s2", u.ID)
	want := auth.RefreshToken{Hash: hash("r1"), SessionID: "s1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := db.CreateRefreshToken(ctx, want); err != nil {
		t.Fatalf("CreateRefreshToken = %v", err)
	}
	if err := db.CreateRefreshToken(ctx, want); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("CreateRefreshToken(same hash) = %v, want ErrConflict", err)
	}
	if err := db.CreateRefreshToken(ctx, auth.RefreshToken{Hash: hash("x"), SessionID: "nope"}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("CreateRefreshToken(unknown session) = %v, want ErrNotFound", err)
	}
	got, err := db.RefreshTokenByHash(ctx, hash("r1"))
	if err != nil {
		t.Fatalf("RefreshTokenByHash = %v", err)
	}
	if diff := cmp.Diff(want, got, equate); diff != "" {
		t.Errorf("RefreshTokenByHash (-want +got):\n%s", diff)
	}
	if _, err := db.RefreshTokenByHash(ctx, hash("nope")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RefreshTokenByHash(nope) = %v, want ErrNotFound", err)
	}

	usedAt := t0.Add(time.Minute)
	for i, want := range []bool{true, false} {
		ok, err := db.UseRefreshToken(ctx, hash("r1"), usedAt.Add(time.Duration(i)*time.Second))
		if err != nil || ok != want {
			t.Errorf("UseRefreshToken #%d = %v, %v; want %v, nil", i+1, ok, err, want)
		}
	}
	got, err = db.RefreshTokenByHash(ctx, hash("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.UsedAt == nil || !got.UsedAt.Equal(usedAt) {
		t.Errorf("UsedAt = %v, want %v", got.UsedAt, usedAt)
	}
	if ok, err := db.UseRefreshToken(ctx, hash("nope"), usedAt); ok || err != nil {
		t.Errorf("UseRefreshToken(nope) = %v, %v; want false, nil", ok, err)
	}

	for _, h := range []string{"r2", "r3"} {
		err := db.CreateRefreshToken(ctx, auth.RefreshToken{Hash: hash(h), SessionID: "s1", CreatedAt: t0, ExpiresAt: t0})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateRefreshToken(ctx, auth.RefreshToken{Hash: hash("s2"), SessionID: "s2", CreatedAt: t0, ExpiresAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRefreshTokens(ctx, "s1"); err != nil {
		t.Fatalf("DeleteRefreshTokens = %v", err)
	}
	for _, h := range []string{"r1", "r2", "r3"} {
		if _, err := db.RefreshTokenByHash(ctx, hash(h)); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("RefreshTokenByHash(%s) after DeleteRefreshTokens = %v, want ErrNotFound", h, err)
		}
	}
	if _, err := db.RefreshTokenByHash(ctx, hash("s2")); err != nil {
		t.Errorf("RefreshTokenByHash(other session's) after DeleteRefreshTokens = %v, want nil", err)
	}
	if err := db.DeleteRefreshTokens(ctx, "nope"); err != nil {
		t.Errorf("DeleteRefreshTokens(nope) = %v, want nil", err)
	}
}

func testChallenges(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "hank")
	want := auth.Challenge{
		Hash:      hash("c1"),
		UserID:    u.ID,
		CreatedAt: t0,
		ExpiresAt: t0.Add(5 * time.Minute),
		AMR:       []string{auth.AMRPassword},
		IP:        "192.0.2.7",
		UserAgent: "curl",
	}
	if err := db.CreateChallenge(ctx, want); err != nil {
		t.Fatalf("CreateChallenge = %v", err)
	}
	if err := db.CreateChallenge(ctx, want); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("CreateChallenge(same hash) = %v, want ErrConflict", err)
	}
	if err := db.CreateChallenge(ctx, auth.Challenge{Hash: hash("x"), UserID: "ghost"}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("CreateChallenge(unknown user) = %v, want ErrNotFound", err)
	}
	got, gotUser, err := db.ChallengeWithUser(ctx, hash("c1"))
	if err != nil {
		t.Fatalf("ChallengeWithUser = %v", err)
	}
	if diff := cmp.Diff(want, got, equate); diff != "" {
		t.Errorf("ChallengeWithUser (-want +got):\n%s", diff)
	}
	if gotUser.ID != want.UserID || gotUser.Email == "" {
		t.Errorf("ChallengeWithUser user = %+v, want user %s", gotUser, want.UserID)
	}
	if _, _, err := db.ChallengeWithUser(ctx, hash("nope")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ChallengeWithUser(nope) = %v, want ErrNotFound", err)
	}

	now := t0.Add(time.Minute)
	for i, want := range []bool{true, true, true, false} {
		ok, err := db.ReserveChallengeAttempt(ctx, hash("c1"), 3, now)
		if err != nil || ok != want {
			t.Errorf("ReserveChallengeAttempt #%d (max 3) = %v, %v; want %v, nil", i+1, ok, err, want)
		}
	}
	got, _, err = db.ChallengeWithUser(ctx, hash("c1"))
	if err != nil || got.Attempts != 3 {
		t.Errorf("Attempts = %d, %v; want 3", got.Attempts, err)
	}

	fresh := want
	fresh.Hash = hash("c2")
	if err := db.CreateChallenge(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.ReserveChallengeAttempt(ctx, hash("c2"), 5, fresh.ExpiresAt); ok || err != nil {
		t.Errorf("ReserveChallengeAttempt(at expiry) = %v, %v; want false, nil", ok, err)
	}
	for i, want := range []bool{true, false} {
		ok, err := db.ConsumeChallenge(ctx, hash("c2"), 5, now)
		if err != nil || ok != want {
			t.Errorf("ConsumeChallenge #%d = %v, %v; want %v, nil", i+1, ok, err, want)
		}
	}
	if ok, err := db.ReserveChallengeAttempt(ctx, hash("c2"), 5, now); ok || err != nil {
		t.Errorf("ReserveChallengeAttempt(used) = %v, %v; want false, nil", ok, err)
	}
	got, _, err = db.ChallengeWithUser(ctx, hash("c2"))
	if err != nil || got.UsedAt == nil || !got.UsedAt.Equal(now) {
		t.Errorf("UsedAt = %v, %v; want %v", got.UsedAt, err, now)
	}
	if ok, err := db.ConsumeChallenge(ctx, hash("nope"), 5, now); ok || err != nil {
		t.Errorf("ConsumeChallenge(nope) = %v, %v; want false, nil", ok, err)
	}
}

func testFactors(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "ivy")
	other := newUser(t, db, "jack")
	totp := auth.Factor{
		ID: "f1", UserID: u.ID, Method: auth.MethodAuthenticator, Label: "phone",
		SealedSecret: []byte{0, 1, 2, 255}, CreatedAt: t0.Add(time.Second), LastStep: 7,
	}
	sms := auth.Factor{
		ID: "f0", UserID: u.ID, Method: auth.MethodSMS, Phone: "+14155552671",
		ConfirmedAt: ptr(t0.Add(time.Minute)), LastUsedAt: ptr(t0.Add(2 * time.Minute)), CreatedAt: t0,
	}
	for _, f := range []auth.Factor{totp, sms} {
		if err := db.CreateFactor(ctx, f); err != nil {
			t.Fatalf("CreateFactor(%s) = %v", f.ID, err)
		}
	}
	newFactor(t, db, "f-other", other.ID, true)
	if err := db.CreateFactor(ctx, totp); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("CreateFactor(same id) = %v, want ErrConflict", err)
	}
	if err := db.CreateFactor(ctx, auth.Factor{ID: "fx", UserID: "ghost", Method: auth.MethodSMS}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("CreateFactor(unknown user) = %v, want ErrNotFound", err)
	}

	got, err := db.FactorsByUser(ctx, u.ID)
	if err != nil {
		t.Fatalf("FactorsByUser = %v", err)
	}
	if diff := cmp.Diff([]auth.Factor{sms, totp}, got, equate); diff != "" {
		t.Errorf("FactorsByUser, oldest first (-want +got):\n%s", diff)
	}
	if got, err := db.FactorsByUser(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Errorf("FactorsByUser(nobody) = %v, %v; want none, nil", got, err)
	}

	confirmedAt := t0.Add(time.Hour)
	if err := db.ConfirmFactor(ctx, "f1", confirmedAt); err != nil {
		t.Fatalf("ConfirmFactor = %v", err)
	}
	if err := db.ConfirmFactor(ctx, "nope", confirmedAt); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ConfirmFactor(nope) = %v, want ErrNotFound", err)
	}
	steps := []struct {
		step int64
		want bool
	}{{7, false}, {6, false}, {8, true}, {8, false}, {10, true}, {9, false}}
	for i, s := range steps {
		ok, err := db.AdvanceFactorStep(ctx, "f1", s.step, t0.Add(time.Duration(i)*time.Second))
		if err != nil || ok != s.want {
			t.Errorf("AdvanceFactorStep(step %d) = %v, %v; want %v, nil", s.step, ok, err, s.want)
		}
	}
	got, err = db.FactorsByUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	totp.ConfirmedAt = &confirmedAt
	totp.LastStep = 10
	totp.LastUsedAt = ptr(t0.Add(4 * time.Second))
	if diff := cmp.Diff([]auth.Factor{sms, totp}, got, equate); diff != "" {
		t.Errorf("after ConfirmFactor and AdvanceFactorStep (-want +got):\n%s", diff)
	}
	if ok, err := db.AdvanceFactorStep(ctx, "nope", 100, t0); ok || err != nil {
		t.Errorf("AdvanceFactorStep(nope) = %v, %v; want false, nil", ok, err)
	}

	if err := db.DeleteFactor(ctx, "f0"); err != nil {
		t.Fatalf("DeleteFactor = %v", err)
	}
	if err := db.DeleteFactor(ctx, "f0"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("DeleteFactor(again) = %v, want ErrNotFound", err)
	}
	if got, err := db.FactorsByUser(ctx, u.ID); err != nil || len(got) != 1 || got[0].ID != "f1" {
		t.Errorf("FactorsByUser after DeleteFactor = %v, %v; want [f1]", got, err)
	}
	if err := db.DeleteUserFactors(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUserFactors = %v", err)
	}
	if got, err := db.FactorsByUser(ctx, u.ID); err != nil || len(got) != 0 {
		t.Errorf("FactorsByUser after DeleteUserFactors = %v, %v; want none", got, err)
	}
	if got, err := db.FactorsByUser(ctx, other.ID); err != nil || len(got) != 1 {
		t.Errorf("other user's factors after DeleteUserFactors = %v, %v; want 1", got, err)
	}
	if err := db.DeleteUserFactors(ctx, u.ID); err != nil {
		t.Errorf("DeleteUserFactors(none left) = %v, want nil", err)
	}
}

func testBackupCodes(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "kim")
	other := newUser(t, db, "lee")
	codes := func(prefix string, n int) [][]byte {
		var hs [][]byte
		for i := range n {
			hs = append(hs, hash(fmt.Sprintf("%s%d", prefix, i)))
		}
		return hs
	}
	count := func(userID string, want int) {
		t.Helper()
		if n, err := db.CountBackupCodes(ctx, userID); err != nil || n != want {
			t.Errorf("CountBackupCodes(%s) = %d, %v; want %d, nil", userID, n, err, want)
		}
	}
	first := codes("a", 10)
	if err := db.ReplaceBackupCodes(ctx, u.ID, first, t0); err != nil {
		t.Fatalf("ReplaceBackupCodes = %v", err)
	}
	if err := db.ReplaceBackupCodes(ctx, other.ID, codes("o", 10), t0); err != nil {
		t.Fatalf("ReplaceBackupCodes(other) = %v", err)
	}
	count(u.ID, 10)
	for i, want := range []bool{true, false} {
		ok, err := db.UseBackupCode(ctx, u.ID, first[0], t0)
		if err != nil || ok != want {
			t.Errorf("UseBackupCode #%d = %v, %v; want %v, nil", i+1, ok, err, want)
		}
	}
	if ok, err := db.UseBackupCode(ctx, other.ID, first[1], t0); ok || err != nil {
		t.Errorf("UseBackupCode(another user's code) = %v, %v; want false, nil", ok, err)
	}
	count(u.ID, 9)
	second := codes("b", 10)
	if err := db.ReplaceBackupCodes(ctx, u.ID, second, t0.Add(time.Hour)); err != nil {
		t.Fatalf("ReplaceBackupCodes(again) = %v", err)
	}
	count(u.ID, 10)
	count(other.ID, 10)
	if ok, err := db.UseBackupCode(ctx, u.ID, first[1], t0); ok || err != nil {
		t.Errorf("UseBackupCode(replaced code) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := db.UseBackupCode(ctx, u.ID, second[9], t0); !ok || err != nil {
		t.Errorf("UseBackupCode(new code) = %v, %v; want true, nil", ok, err)
	}
	count(u.ID, 9)
	// A failing replacement (a duplicate hash) keeps the old codes.
	if err := db.ReplaceBackupCodes(ctx, u.ID, [][]byte{hash("z"), hash("z")}, t0); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("ReplaceBackupCodes(duplicate hashes) = %v, want ErrConflict", err)
	}
	count(u.ID, 9)
	if err := db.ReplaceBackupCodes(ctx, u.ID, nil, t0); err != nil {
		t.Fatalf("ReplaceBackupCodes(none) = %v", err)
	}
	count(u.ID, 0)
}

func testAudit(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	events := []auth.AuditEvent{
		{ID: "e1", Time: t0, Type: auth.EventLoginSucceeded, UserID: "u1", IP: "192.0.2.1", UserAgent: "ua",
			Detail: map[string]any{"amr": []any{"pwd"}, "second_factor": "required"}},
		{ID: "e2", Time: t0.Add(time.Second), Type: auth.EventTwoFaEnabled, UserID: "u1", ActorID: "admin"},
		{ID: "e3", Time: t0.Add(time.Second), Type: auth.EventLoginFailed, UserID: "u2"},
		{ID: "e4", Time: t0.Add(2 * time.Second), Type: auth.EventSettingsChanged, ActorID: "admin",
			Detail: map[string]any{"sudoMinutes": 10.0, "nested": map[string]any{"ok": true}}},
	}
	for _, e := range events {
		if err := db.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit(%s) = %v", e.ID, err)
		}
	}
	if err := db.AppendAudit(ctx, events[0]); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("AppendAudit(same id) = %v, want ErrConflict", err)
	}
	if err := db.AppendAudit(ctx, auth.AuditEvent{Time: t0, Type: "no.id"}); err != nil {
		t.Errorf("AppendAudit(no id) = %v, want nil (an id is made up)", err)
	}

	tests := []struct {
		userID string
		limit  int
		want   []auth.AuditEvent
	}{
		{"u1", 10, []auth.AuditEvent{events[1], events[0]}},
		{"u1", 1, []auth.AuditEvent{events[1]}},
		{"u2", 0, []auth.AuditEvent{events[2]}},
		{"nobody", 10, nil},
		{"", 3, []auth.AuditEvent{events[3], events[2], events[1]}},
	}
	for _, tt := range tests {
		got, err := db.AuditEvents(ctx, tt.userID, tt.limit)
		if err != nil {
			t.Fatalf("AuditEvents(%q, %d) = %v", tt.userID, tt.limit, err)
		}
		if diff := cmp.Diff(tt.want, got, equate); diff != "" {
			t.Errorf("AuditEvents(%q, %d) (-want +got):\n%s", tt.userID, tt.limit, diff)
		}
	}
}

// allowFive lets five attempts through, then asks to wait a minute after
// the last one; once that has passed it resets the counter.
func allowFive(s auth.AttemptState, now time.Time) (time.Duration, bool) {
	if s.Failures < 5 {
		return 0, false
	}
	if wait := s.LastAt.Add(time.Minute).Sub(now); wait > 0 {
		return wait, false
	}
	return 0, true
}

func testAttempts(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	state := func(key string, want auth.AttemptState) {
		t.Helper()
		got, err := db.AttemptState(ctx, key)
		if err != nil {
			t.Fatalf("AttemptState(%s) = %v", key, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AttemptState(%s) (-want +got):\n%s", key, diff)
		}
	}
	state("login:u1", auth.AttemptState{})

	now := t0
	for i := range 5 {
		now = now.Add(time.Second)
		if wait, err := db.ReserveAttempt(ctx, "login:u1", now, allowFive); wait != 0 || err != nil {
			t.Fatalf("ReserveAttempt #%d = %v, %v; want 0, nil", i+1, wait, err)
		}
	}
	state("login:u1", auth.AttemptState{Failures: 5, LastAt: now})
	wait, err := db.ReserveAttempt(ctx, "login:u1", now.Add(10*time.Second), allowFive)
	if wait != 50*time.Second || err != nil {
		t.Errorf("ReserveAttempt(sixth) = %v, %v; want 50s, nil", wait, err)
	}
	state("login:u1", auth.AttemptState{Failures: 5, LastAt: now}) // a refused attempt changes nothing

	later := now.Add(time.Minute)
	if wait, err := db.ReserveAttempt(ctx, "login:u1", later, allowFive); wait != 0 || err != nil {
		t.Errorf("ReserveAttempt(after the wait) = %v, %v; want 0, nil", wait, err)
	}
	state("login:u1", auth.AttemptState{Failures: 1, LastAt: later}) // reset, then counted
	state("login:u2", auth.AttemptState{})

	// The policy sees the stored state.
	var seen auth.AttemptState
	spy := func(s auth.AttemptState, now time.Time) (time.Duration, bool) { seen = s; return 0, false }
	if _, err := db.ReserveAttempt(ctx, "login:u1", later, spy); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.AttemptState{Failures: 1, LastAt: later}, seen); diff != "" {
		t.Errorf("policy saw (-want +got):\n%s", diff)
	}

	if err := db.ResetAttempts(ctx, "login:u1"); err != nil {
		t.Fatalf("ResetAttempts = %v", err)
	}
	state("login:u1", auth.AttemptState{})
	if err := db.ResetAttempts(ctx, "never"); err != nil {
		t.Errorf("ResetAttempts(never) = %v, want nil", err)
	}
}

func testWindows(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	w1, w2 := t0, t0.Add(time.Minute)
	hits := []struct {
		key    string
		window time.Time
		want   int64
	}{
		{"login:ip:a", w1, 1}, {"login:ip:a", w1, 2}, {"login:ip:b", w1, 1},
		{"login:ip:a", w2, 1}, {"login:ip:a", w1, 3},
	}
	for _, h := range hits {
		if n, err := db.HitWindow(ctx, h.key, h.window); n != h.want || err != nil {
			t.Errorf("HitWindow(%s, %v) = %d, %v; want %d, nil", h.key, h.window, n, err, h.want)
		}
	}
}

func testPruneCounters(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	for _, w := range []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		if _, err := db.HitWindow(ctx, "k", w); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ReserveAttempt(ctx, "old-failures", t0, allowFive); err != nil {
		t.Fatal(err)
	}
	// A refused first attempt leaves a counter with no failures.
	refuse := func(auth.AttemptState, time.Time) (time.Duration, bool) { return time.Minute, false }
	if _, err := db.ReserveAttempt(ctx, "empty", t0, refuse); err != nil {
		t.Fatal(err)
	}
	if err := db.PruneCounters(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("PruneCounters = %v", err)
	}
	var windows, attempts int
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM rate_windows`).Scan(&windows); err != nil {
		t.Fatal(err)
	}
	if windows != 1 {
		t.Errorf("rate windows after PruneCounters = %d, want 1 (the one starting at the cut-off)", windows)
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM attempts`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 {
		t.Errorf("attempt counters after PruneCounters = %d, want 1 (failures are kept)", attempts)
	}
	if st, err := db.AttemptState(ctx, "old-failures"); err != nil || st.Failures != 1 {
		t.Errorf("AttemptState(old-failures) = %+v, %v; want 1 failure kept", st, err)
	}
}

func testSigningKeys(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	var ks token.KeyStore = db
	if got, err := ks.SigningKeys(ctx); err != nil || len(got) != 0 {
		t.Fatalf("SigningKeys(empty) = %v, %v; want none, nil", got, err)
	}
	key := func(id string, created time.Time) token.StoredKey {
		pub, _, err := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte(id), 32)))
		if err != nil {
			t.Fatal(err)
		}
		return token.StoredKey{ID: id, Public: pub, Sealed: []byte("sealed-" + id), CreatedAt: created}
	}
	k1, k2, k3 := key("k1", t0), key("k2", t0.Add(time.Hour)), key("k3", t0.Add(2*time.Hour))
	for _, k := range []token.StoredKey{k2, k1, k3} {
		if err := ks.InsertSigningKey(ctx, k); err != nil {
			t.Fatalf("InsertSigningKey(%s) = %v", k.ID, err)
		}
	}
	if err := ks.InsertSigningKey(ctx, k1); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("InsertSigningKey(same id) = %v, want ErrConflict", err)
	}
	got, err := ks.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]token.StoredKey{k1, k2, k3}, got, equate); diff != "" {
		t.Errorf("SigningKeys (-want +got):\n%s", diff)
	}

	at := t0.Add(3 * time.Hour)
	if err := ks.RetireSigningKeys(ctx, "k3", at); err != nil {
		t.Fatalf("RetireSigningKeys = %v", err)
	}
	if err := ks.RetireSigningKeys(ctx, "k3", at.Add(time.Hour)); err != nil {
		t.Fatalf("RetireSigningKeys(again) = %v", err)
	}
	got, err = ks.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k1.RetiredAt, k2.RetiredAt = &at, &at // the first retirement stays
	if diff := cmp.Diff([]token.StoredKey{k1, k2, k3}, got, equate); diff != "" {
		t.Errorf("SigningKeys after RetireSigningKeys (-want +got):\n%s", diff)
	}
}

func testWithTx(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	err := db.WithTx(ctx, func(tx auth.Tx) error {
		u := auth.User{ID: "tx-user", Email: "tx@example.com", CreatedAt: t0, UpdatedAt: t0}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		// Reads inside the transaction see its writes.
		if _, err := tx.UserByEmail(ctx, "tx@example.com"); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		if err := tx.ReplaceBackupCodes(ctx, u.ID, [][]byte{hash("a"), hash("b")}, t0); err != nil {
			return err
		}
		if wait, err := tx.ReserveAttempt(ctx, "tx-key", t0, allowFive); wait != 0 || err != nil {
			return fmt.Errorf("ReserveAttempt = %v, %w", wait, err)
		}
		return tx.AppendAudit(ctx, auth.AuditEvent{ID: "tx-e", Time: t0, Type: auth.EventUserRegistered, UserID: u.ID})
	})
	if err != nil {
		t.Fatalf("WithTx = %v", err)
	}
	if _, err := db.UserByID(ctx, "tx-user"); err != nil {
		t.Errorf("UserByID after commit = %v", err)
	}
	if n, err := db.CountBackupCodes(ctx, "tx-user"); n != 2 || err != nil {
		t.Errorf("CountBackupCodes after commit = %d, %v; want 2", n, err)
	}
	if st, err := db.AttemptState(ctx, "tx-key"); st.Failures != 1 || err != nil {
		t.Errorf("AttemptState after commit = %+v, %v; want 1 failure", st, err)
	}
	if evs, err := db.AuditEvents(ctx, "tx-user", 10); len(evs) != 1 || err != nil {
		t.Errorf("AuditEvents after commit = %v, %v; want 1", evs, err)
	}
}

func testWithTxRollback(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	newUser(t, db, "base")
	boom := errors.New("boom")
	err := db.WithTx(ctx, func(tx auth.Tx) error {
		u := auth.User{ID: "rb-user", Email: "rb@example.com", CreatedAt: t0, UpdatedAt: t0}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		s := auth.Session{ID: "rb-s", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), AuthAt: t0}
		if err := tx.CreateSession(ctx, s); err != nil {
			return err
		}
		if err := tx.CreateRefreshToken(ctx, auth.RefreshToken{Hash: hash("rb"), SessionID: s.ID, CreatedAt: t0, ExpiresAt: t0}); err != nil {
			return err
		}
		if err := tx.UpdatePasswordHash(ctx, "user-base", "changed", t0); err != nil {
			return err
		}
		if _, err := tx.ReserveAttempt(ctx, "rb-key", t0, allowFive); err != nil {
			return err
		}
		if _, err := tx.HitWindow(ctx, "rb-window", t0); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, auth.AuditEvent{ID: "rb-e", Time: t0, Type: auth.EventUserRegistered}); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	for _, table := range []string{"sessions", "refresh_tokens", "attempts", "rate_windows", "audit_events"} {
		var n int
		if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s after rollback: %d rows, want 0", table, n)
		}
	}
	if _, err := db.UserByID(ctx, "rb-user"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("UserByID(rb-user) after rollback = %v, want ErrNotFound", err)
	}
	if u, err := db.UserByID(ctx, "user-base"); err != nil || u.PasswordHash == "changed" {
		t.Errorf("UserByID(user-base) after rollback = %q, %v; want the old hash", u.PasswordHash, err)
	}

	// A panic rolls back too, and the writer is usable afterwards.
	func() {
		defer func() { _ = recover() }()
		_ = db.WithTx(ctx, func(tx auth.Tx) error {
			_ = tx.AppendAudit(ctx, auth.AuditEvent{ID: "panic-e", Time: t0, Type: "x"})
			panic("boom")
		})
	}()
	if evs, err := db.AuditEvents(ctx, "", 10); len(evs) != 0 || err != nil {
		t.Errorf("AuditEvents after a panic in WithTx = %v, %v; want none", evs, err)
	}
	if err := db.AppendAudit(ctx, auth.AuditEvent{ID: "after", Time: t0, Type: "x"}); err != nil {
		t.Errorf("AppendAudit after a panic in WithTx = %v", err)
	}
}

func testTimePrecision(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	in := time.Date(2031, 12, 31, 23, 59, 58, 123456789, zone)
	want := time.Date(2031, 12, 31, 18, 29, 58, 123456000, time.UTC) // microseconds, UTC
	old := time.Date(1969, 7, 20, 20, 17, 40, 654321000, time.UTC)   // before the epoch

	u := auth.User{ID: "time", CreatedAt: in, UpdatedAt: old}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s := auth.Session{ID: "time", UserID: u.ID, CreatedAt: in, ExpiresAt: in, AuthAt: in, SecondFactorAt: &in, RevokedAt: &old}
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	gotS, gotU, err := db.SessionWithUser(ctx, "time")
	if err != nil {
		t.Fatal(err)
	}
	times := map[string]time.Time{
		"user.CreatedAt":         gotU.CreatedAt,
		"session.CreatedAt":      gotS.CreatedAt,
		"session.ExpiresAt":      gotS.ExpiresAt,
		"session.AuthAt":         gotS.AuthAt,
		"session.SecondFactorAt": *gotS.SecondFactorAt,
	}
	for name, got := range times {
		if got != want { // same instant, same location, no monotonic reading
			t.Errorf("%s = %v (%v), want %v", name, got, got.Location(), want)
		}
	}
	if gotU.UpdatedAt != old || *gotS.RevokedAt != old {
		t.Errorf("pre-epoch times = %v, %v; want %v", gotU.UpdatedAt, *gotS.RevokedAt, old)
	}
	var raw int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT created_at FROM users WHERE id = 'time'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != want.UnixMicro() {
		t.Errorf("stored created_at = %d, want %d (microseconds since the epoch)", raw, want.UnixMicro())
	}
}

// concurrently runs fn n times at once and returns how many returned true.
func concurrently(t *testing.T, n int, fn func(i int) (bool, error)) int {
	t.Helper()
	var wins atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			ok, err := fn(i)
			if err != nil {
				errs <- err
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
	return int(wins.Load())
}

func testSingleUseConcurrent(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "mia")
	newSession(t, db, "s", u.ID)
	if err := db.CreateRefreshToken(ctx, auth.RefreshToken{Hash: hash("r"), SessionID: "s", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateChallenge(ctx, auth.Challenge{Hash: hash("c"), UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	newFactor(t, db, "f", u.ID, true)
	if err := db.ReplaceBackupCodes(ctx, u.ID, [][]byte{hash("b")}, t0); err != nil {
		t.Fatal(err)
	}

	const n = 20
	ops := []struct {
		name string
		fn   func(ctx context.Context) (bool, error)
	}{
		{"UseRefreshToken", func(ctx context.Context) (bool, error) { return db.UseRefreshToken(ctx, hash("r"), t0) }},
		{"ConsumeChallenge", func(ctx context.Context) (bool, error) { return db.ConsumeChallenge(ctx, hash("c"), 5, t0) }},
		{"AdvanceFactorStep", func(ctx context.Context) (bool, error) { return db.AdvanceFactorStep(ctx, "f", 1000, t0) }},
		{"UseBackupCode", func(ctx context.Context) (bool, error) { return db.UseBackupCode(ctx, u.ID, hash("b"), t0) }},
		{"RevokeSession", func(ctx context.Context) (bool, error) { return db.RevokeSession(ctx, "s", t0) }},
	}
	for _, op := range ops {
		if wins := concurrently(t, n, func(int) (bool, error) { return op.fn(ctx) }); wins != 1 {
			t.Errorf("%s from %d goroutines: %d succeeded, want exactly 1", op.name, n, wins)
		}
	}

	// The same, each call inside its own WithTx.
	newSession(t, db, "s2", u.ID)
	if err := db.CreateRefreshToken(ctx, auth.RefreshToken{Hash: hash("r2"), SessionID: "s2", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wins := concurrently(t, n, func(int) (bool, error) {
		var ok bool
		err := db.WithTx(ctx, func(tx auth.Tx) error {
			var err error
			ok, err = tx.UseRefreshToken(ctx, hash("r2"), t0)
			return err
		})
		return ok, err
	})
	if wins != 1 {
		t.Errorf("UseRefreshToken in WithTx from %d goroutines: %d succeeded, want exactly 1", n, wins)
	}
}

func testReserveChallengeAttemptConcurrent(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "ned")
	if err := db.CreateChallenge(ctx, auth.Challenge{Hash: hash("c"), UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const n, max = 20, 5
	wins := concurrently(t, n, func(int) (bool, error) { return db.ReserveChallengeAttempt(ctx, hash("c"), max, t0) })
	if wins != max {
		t.Errorf("ReserveChallengeAttempt(max %d) from %d goroutines: %d succeeded, want %d", max, n, wins, max)
	}
}

func testReserveAttemptConcurrent(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	const n = 50
	reserve := func(tx auth.Tx) func(int) (bool, error) {
		return func(i int) (bool, error) {
			wait, err := tx.ReserveAttempt(ctx, "key", t0.Add(time.Duration(i)*time.Millisecond), allowFive)
			return wait == 0 && err == nil, err
		}
	}
	if wins := concurrently(t, n, reserve(db)); wins != 5 {
		t.Errorf("ReserveAttempt (policy allows 5) from %d goroutines: %d let through, want 5", n, wins)
	}
	if st, err := db.AttemptState(ctx, "key"); err != nil || st.Failures != 5 {
		t.Errorf("AttemptState = %+v, %v; want 5 failures", st, err)
	}

	// Inside WithTx the method uses the caller's transaction.
	wins := concurrently(t, n, func(i int) (bool, error) {
		var ok bool
		err := db.WithTx(ctx, func(tx auth.Tx) error {
			var err error
			ok, err = reserve(tx)(i)
			return err
		})
		return ok, err
	})
	if wins != 0 {
		t.Errorf("ReserveAttempt in WithTx past the limit: %d let through, want 0", wins)
	}
	if st, err := db.AttemptState(ctx, "key"); err != nil || st.Failures != 5 {
		t.Errorf("AttemptState after WithTx round = %+v, %v; want still 5 failures", st, err)
	}
	if err := db.ResetAttempts(ctx, "key"); err != nil {
		t.Fatal(err)
	}
	wins = concurrently(t, n, func(i int) (bool, error) {
		var ok bool
		err := db.WithTx(ctx, func(tx auth.Tx) error {
			var err error
			ok, err = reserve(tx)(i)
			return err
		})
		return ok, err
	})
	if wins != 5 {
		t.Errorf("ReserveAttempt in WithTx (policy allows 5) from %d goroutines: %d let through, want 5", n, wins)
	}
}

// fakeSealer marks sealed values instead of encrypting them, and checks aad.
type fakeSealer struct{}

func (fakeSealer) Seal(plaintext, aad []byte) ([]byte, error) {
	return append([]byte("sealed("+string(aad)+"):"), plaintext...), nil
}

func (fakeSealer) Open(sealed, aad []byte) ([]byte, error) {
	prefix := []byte("sealed(" + string(aad) + "):")
	if !bytes.HasPrefix(sealed, prefix) {
		return nil, errors.New("fakeSealer: wrong aad")
	}
	return bytes.Clone(sealed[len(prefix):]), nil
}

func testServerKeys(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	const n = 10
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Each caller would create a different key.
			r := bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 64))
			k, err := db.ServerKey(ctx, "hmac", fakeSealer{}, r)
			if err != nil {
				t.Errorf("ServerKey #%d = %v", i, err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Errorf("ServerKey #%d = %x, want the same 32 bytes as #0 (%x)", i, k, keys[0])
		}
	}
	again, err := db.ServerKey(ctx, "hmac", fakeSealer{}, bytes.NewReader(bytes.Repeat([]byte{99}, 64)))
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Errorf("ServerKey(again) = %x, %v; want %x", again, err, keys[0])
	}
	other, err := db.ServerKey(ctx, "other", fakeSealer{}, bytes.NewReader(bytes.Repeat([]byte{42}, 64)))
	if err != nil || bytes.Equal(other, keys[0]) {
		t.Errorf("ServerKey(other) = %x, %v; want a different key", other, err)
	}
	var sealed []byte
	if err := db.SQL().QueryRowContext(ctx, `SELECT sealed FROM server_keys WHERE name = 'hmac'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealed, []byte("sealed(server-key:hmac):")) {
		t.Errorf("stored key %q, want it sealed with aad server-key:hmac", sealed)
	}
	if _, err := db.ServerKey(ctx, "empty-reader", fakeSealer{}, bytes.NewReader(nil)); err == nil {
		t.Errorf("ServerKey(failing reader) = nil error, want one")
	}
}
