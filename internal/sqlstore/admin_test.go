package sqlstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
)

// TestAdminStore checks the administration methods on every engine.
func TestAdminStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t *testing.T, db *sqlstore.DB)
	}{
		{"Settings", testSettings},
		{"FindUsers", testFindUsers},
		{"FindUsersPaging", testFindUsersPaging},
		{"SetUserDisabled", testSetUserDisabled},
		{"SetSessionEnrollmentOnly", testSetSessionEnrollmentOnly},
		{"CountStrandedUsers", testCountStrandedUsers},
		{"FindAuditEvents", testFindAuditEvents},
	}
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, sqltest.Open(t, engine))
				})
			}
		})
	}
}

func testSettings(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	if _, err := db.Settings(ctx); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("Settings(none saved) = %v, want ErrNotFound", err)
	}
	v1 := auth.SettingsRecord{Document: []byte(`{"twoFa":{"sudoMinutes":5}}`), Version: 1, UpdatedAt: t0}
	if err := db.SaveSettings(ctx, v1); err != nil {
		t.Fatalf("SaveSettings(v1) = %v", err)
	}
	if err := db.SaveSettings(ctx, v1); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("SaveSettings(v1 again) = %v, want ErrConflict", err)
	}
	v3 := auth.SettingsRecord{Document: []byte(`{}`), Version: 3, UpdatedAt: t0}
	if err := db.SaveSettings(ctx, v3); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("SaveSettings(v3 over v1) = %v, want ErrConflict", err)
	}
	got, err := db.Settings(ctx)
	if err != nil || got.Version != 1 {
		t.Fatalf("Settings() = %+v, %v; want version 1", got, err)
	}

	// Inside a transaction that rolls back, nothing is stored.
	v2 := auth.SettingsRecord{Document: []byte(`{"twoFa":{"sudoMinutes":7}}`), Version: 2, UpdatedAt: t0.Add(time.Minute)}
	boom := errors.New("boom")
	err = db.WithTx(ctx, func(tx auth.Tx) error {
		if err := tx.SaveSettings(ctx, v2); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want boom", err)
	}
	if got, _ := db.Settings(ctx); got.Version != 1 {
		t.Errorf("after a rolled-back save, version = %d, want 1", got.Version)
	}

	if err := db.WithTx(ctx, func(tx auth.Tx) error { return tx.SaveSettings(ctx, v2) }); err != nil {
		t.Fatalf("SaveSettings(v2) in a transaction = %v", err)
	}
	got, err = db.Settings(ctx)
	if err != nil {
		t.Fatalf("Settings() = %v", err)
	}
	if diff := cmp.Diff(v2, got); diff != "" {
		t.Errorf("Settings() after v2 (-want +got):\n%s", diff)
	}
}

// createUser inserts a user with the given fields and created_at t0+offset.
func createUser(t *testing.T, db *sqlstore.DB, id, email, username, phone string, offset time.Duration) auth.User {
	t.Helper()
	u := auth.User{
		ID: id, Email: email, Username: username, Phone: phone, Roles: []string{auth.RoleUser},
		CreatedAt: t0.Add(offset), UpdatedAt: t0.Add(offset),
	}
	if err := db.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%q) = %v", id, err)
	}
	return u
}

func ids(users []auth.User) []string {
	out := []string{}
	for _, u := range users {
		out = append(out, u.ID)
	}
	return out
}

func testFindUsers(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	createUser(t, db, "a", "ada@example.com", "ada", "+14155552671", 0)
	createUser(t, db, "b", "bob@example.org", "bob_smith", "", time.Second)
	createUser(t, db, "c", "carol@example.com", "", "+442071838750", 2*time.Second)
	createUser(t, db, "d", "", "dave%", "+14155550000", 3*time.Second)
	newFactor(t, db, "f1", "a", true)

	tests := []struct {
		name string
		f    auth.UserFilter
		want []string
	}{
		{"all", auth.UserFilter{Limit: 10}, []string{"a", "b", "c", "d"}},
		{"email substring", auth.UserFilter{Query: "example.com", Limit: 10}, []string{"a", "c"}},
		{"username", auth.UserFilter{Query: "smith", Limit: 10}, []string{"b"}},
		{"phone", auth.UserFilter{Query: "+1415", Limit: 10}, []string{"a", "d"}},
		{"phone digits", auth.UserFilter{Query: "+44 20", PhoneDigits: "4420", Limit: 10}, []string{"c"}},
		{"underscore is literal", auth.UserFilter{Query: "b_s", Limit: 10}, []string{"b"}},
		{"underscore matches no other character", auth.UserFilter{Query: "a_a", Limit: 10}, []string{}},
		{"percent is literal", auth.UserFilter{Query: "e%", Limit: 10}, []string{"d"}},
		{"nothing", auth.UserFilter{Query: "zzz", Limit: 10}, []string{}},
		{"limit", auth.UserFilter{Limit: 2}, []string{"a", "b"}},
		{"after", auth.UserFilter{After: &auth.UserKey{CreatedAt: t0.Add(time.Second), ID: "b"}, Limit: 10}, []string{"c", "d"}},
		{"after with query", auth.UserFilter{Query: "example", After: &auth.UserKey{CreatedAt: t0, ID: "a"}, Limit: 10}, []string{"b", "c"}},
	}
	for _, tt := range tests {
		got, err := db.FindUsers(ctx, tt.f)
		if err != nil {
			t.Fatalf("FindUsers(%s) = %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("FindUsers(%s) (-want +got):\n%s", tt.name, diff)
		}
	}
	got, err := db.FindUsers(ctx, auth.UserFilter{Query: "ada", Limit: 1})
	if err != nil || len(got) != 1 || !got[0].TwoFaEnabled || got[0].Email != "ada@example.com" {
		t.Errorf("FindUsers(ada) = %+v, %v; want ada with TwoFaEnabled", got, err)
	}
}

// testFindUsersPaging walks every page of users that share created_at: the
// id breaks the tie, so no user is skipped or repeated.
func testFindUsersPaging(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	var want []string
	for i := range 23 {
		id := fmt.Sprintf("u%02d", i)
		createUser(t, db, id, id+"@example.com", "", "", time.Duration(i/5)*time.Second)
		want = append(want, id)
	}
	var got []string
	var after *auth.UserKey
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("FindUsers does not stop paging")
		}
		page, err := db.FindUsers(ctx, auth.UserFilter{After: after, Limit: 4})
		if err != nil {
			t.Fatalf("FindUsers = %v", err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, ids(page)...)
		last := page[len(page)-1]
		after = &auth.UserKey{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("users over every page (-want +got):\n%s", diff)
	}
}

func testSetUserDisabled(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "dora")
	later := t0.Add(time.Hour)
	if err := db.SetUserDisabled(ctx, u.ID, true, later); err != nil {
		t.Fatalf("SetUserDisabled(true) = %v", err)
	}
	got, err := db.UserByID(ctx, u.ID)
	if err != nil || !got.Disabled || !got.UpdatedAt.Equal(later) {
		t.Errorf("after SetUserDisabled(true): %+v, %v; want disabled, updated at %v", got, err, later)
	}
	if err := db.WithTx(ctx, func(tx auth.Tx) error { return tx.SetUserDisabled(ctx, u.ID, false, later) }); err != nil {
		t.Fatalf("SetUserDisabled(false) in a transaction = %v", err)
	}
	if got, _ := db.UserByID(ctx, u.ID); got.Disabled {
		t.Errorf("after SetUserDisabled(false): still disabled")
	}
	if err := db.SetUserDisabled(ctx, "nobody", true, later); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SetUserDisabled(unknown) = %v, want ErrNotFound", err)
	}
}

func testSetSessionEnrollmentOnly(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	u := newUser(t, db, "erin")
	s := newSession(t, db, "s1", u.ID)
	check := func(want bool) {
		t.Helper()
		got, _, err := db.SessionWithUser(ctx, s.ID)
		if err != nil || got.EnrollmentOnly != want {
			t.Errorf("SessionWithUser: EnrollmentOnly = %v, %v; want %v", got.EnrollmentOnly, err, want)
		}
	}
	check(false)
	if err := db.WithTx(ctx, func(tx auth.Tx) error { return tx.SetSessionEnrollmentOnly(ctx, s.ID, true) }); err != nil {
		t.Fatalf("SetSessionEnrollmentOnly(true) = %v", err)
	}
	check(true)
	if err := db.SetSessionEnrollmentOnly(ctx, s.ID, false); err != nil {
		t.Fatalf("SetSessionEnrollmentOnly(false) = %v", err)
	}
	check(false)
	if err := db.SetSessionEnrollmentOnly(ctx, "nope", true); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SetSessionEnrollmentOnly(unknown) = %v, want ErrNotFound", err)
	}
}

func testCountStrandedUsers(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	factor := func(id, userID, method string, confirmed bool) {
		t.Helper()
		f := auth.Factor{ID: id, UserID: userID, Method: method, Phone: "+14155552671", CreatedAt: t0}
		if confirmed {
			f.ConfirmedAt = ptr(t0)
		}
		if err := db.CreateFactor(ctx, f); err != nil {
			t.Fatalf("CreateFactor(%s) = %v", id, err)
		}
	}
	createUser(t, db, "app", "app@example.com", "", "", 0)
	factor("f1", "app", auth.MethodAuthenticator, true)
	factor("f1b", "app", auth.MethodAuthenticator, true) // two apps: one user
	createUser(t, db, "phone", "phone@example.com", "", "", 0)
	factor("f2", "phone", auth.MethodSMS, true)
	createUser(t, db, "both", "both@example.com", "", "", 0)
	factor("f3", "both", auth.MethodAuthenticator, true)
	factor("f4", "both", auth.MethodSMS, true)
	createUser(t, db, "pending", "pending@example.com", "", "", 0)
	factor("f5", "pending", auth.MethodSMS, false)
	createUser(t, db, "none", "none@example.com", "", "", 0)

	tests := []struct {
		usable []string
		want   int
	}{
		{[]string{auth.MethodAuthenticator, auth.MethodSMS}, 0},
		{[]string{auth.MethodAuthenticator}, 1}, // phone
		{[]string{auth.MethodSMS}, 1},           // app
		{nil, 3},                                // app, phone, both
	}
	for _, tt := range tests {
		got, err := db.CountStrandedUsers(ctx, tt.usable)
		if err != nil || got != tt.want {
			t.Errorf("CountStrandedUsers(%v) = %d, %v; want %d", tt.usable, got, err, tt.want)
		}
	}
}

func testFindAuditEvents(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	events := []auth.AuditEvent{
		{ID: "e1", Time: t0, Type: auth.EventLoginFailed, UserID: "u1", IP: "192.0.2.1", UserAgent: "ua",
			Detail: map[string]any{"reason": "password"}},
		{ID: "e2", Time: t0.Add(time.Second), Type: auth.EventAdminTwoFaReset, UserID: "u1", ActorID: "adm"},
		{ID: "e3", Time: t0.Add(time.Second), Type: auth.EventLoginFailed, UserID: "u2"},
		{ID: "e4", Time: t0.Add(2 * time.Second), Type: auth.EventSettingsChanged, ActorID: "adm"},
		{ID: "e5", Time: t0.Add(3 * time.Second), Type: auth.EventLoginSucceeded, UserID: "u2"},
	}
	for _, e := range events {
		if err := db.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit(%s) = %v", e.ID, err)
		}
	}
	evIDs := func(es []auth.AuditEvent) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    auth.AuditFilter
		want []string
	}{
		{"all, newest first, ties by id", auth.AuditFilter{Limit: 10}, []string{"e5", "e4", "e3", "e2", "e1"}},
		{"user", auth.AuditFilter{UserID: "u1", Limit: 10}, []string{"e2", "e1"}},
		{"actor", auth.AuditFilter{ActorID: "adm", Limit: 10}, []string{"e4", "e2"}},
		{"type", auth.AuditFilter{Type: auth.EventLoginFailed, Limit: 10}, []string{"e3", "e1"}},
		{"since is inclusive", auth.AuditFilter{Since: t0.Add(2 * time.Second), Limit: 10}, []string{"e5", "e4"}},
		{"until is exclusive", auth.AuditFilter{Until: t0.Add(2 * time.Second), Limit: 10}, []string{"e3", "e2", "e1"}},
		{"since and until", auth.AuditFilter{Since: t0.Add(time.Second), Until: t0.Add(2 * time.Second), Limit: 10}, []string{"e3", "e2"}},
		{"before a tie", auth.AuditFilter{Before: &auth.AuditKey{Time: t0.Add(time.Second), ID: "e3"}, Limit: 10}, []string{"e2", "e1"}},
		{"before with type", auth.AuditFilter{Type: auth.EventLoginFailed, Before: &auth.AuditKey{Time: t0.Add(time.Second), ID: "e3"}, Limit: 10}, []string{"e1"}},
		{"limit", auth.AuditFilter{Limit: 2}, []string{"e5", "e4"}},
		{"nothing", auth.AuditFilter{UserID: "nobody", Limit: 10}, []string{}},
	}
	for _, tt := range tests {
		got, err := db.FindAuditEvents(ctx, tt.f)
		if err != nil {
			t.Fatalf("FindAuditEvents(%s) = %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, evIDs(got)); diff != "" {
			t.Errorf("FindAuditEvents(%s) (-want +got):\n%s", tt.name, diff)
		}
	}
	got, err := db.FindAuditEvents(ctx, auth.AuditFilter{UserID: "u1", Type: auth.EventLoginFailed, Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("FindAuditEvents(u1, login.failed) = %v, %v", got, err)
	}
	if diff := cmp.Diff(events[0], got[0], equate); diff != "" {
		t.Errorf("stored event (-want +got):\n%s", diff)
	}
}
