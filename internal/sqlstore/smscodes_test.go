package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/sqlstore"
)

func testSMSCodes(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	u := newUser(t, db, "sms")
	code := func(id string, at time.Time, h string) auth.SMSCode {
		return auth.SMSCode{ID: id, Purpose: auth.PurposeEnrolment, Subject: u.ID, UserID: u.ID, Phone: "+14155552671",
			CodeHash: hash(h), CreatedAt: at, LastSentAt: at, ExpiresAt: at.Add(5 * time.Minute)}
	}
	if _, err := db.SMSCodeFor(ctx, auth.PurposeEnrolment, u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("SMSCodeFor(none) = %v, want ErrNotFound", err)
	}
	first, err := db.SaveSMSCode(ctx, code("c1", t0, "111111"))
	if err != nil || first.Attempts != 0 || first.Sends != 1 {
		t.Fatalf("SaveSMSCode(first) = %+v, %v; want attempts 0, sends 1", first, err)
	}
	for i := 0; i < 3; i++ {
		if ok, err := db.ReserveSMSCodeAttempt(ctx, "c1", 5, t0.Add(time.Second)); !ok || err != nil {
			t.Fatalf("ReserveSMSCodeAttempt #%d = %v, %v; want true", i, ok, err)
		}
	}
	// A resend of a live code replaces the code and keeps the attempts.
	resent, err := db.SaveSMSCode(ctx, code("c2", t0.Add(time.Minute), "222222"))
	if err != nil {
		t.Fatal(err)
	}
	if resent.ID != "c2" || resent.Attempts != 3 || resent.Sends != 2 || string(resent.CodeHash) != string(hash("222222")) || !resent.CreatedAt.Equal(t0) {
		t.Fatalf("SaveSMSCode(resend) = %+v; want id c2, attempts 3, sends 2, new hash, created_at kept", resent)
	}
	// A wrong purpose or subject finds nothing: codes are bound.
	if _, err := db.SMSCodeFor(ctx, auth.PurposeLogin, u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SMSCodeFor(other purpose) = %v, want ErrNotFound", err)
	}
	// Attempts stop at max; an expired code takes none.
	if ok, _ := db.ReserveSMSCodeAttempt(ctx, "c2", 4, t0.Add(time.Minute)); !ok {
		t.Errorf("ReserveSMSCodeAttempt(4th of 4) = false, want true")
	}
	if ok, _ := db.ReserveSMSCodeAttempt(ctx, "c2", 4, t0.Add(time.Minute)); ok {
		t.Errorf("ReserveSMSCodeAttempt(5th of 4) = true, want false")
	}
	if ok, _ := db.ReserveSMSCodeAttempt(ctx, "c2", 10, t0.Add(time.Hour)); ok {
		t.Errorf("ReserveSMSCodeAttempt(expired) = true, want false")
	}
	// Consumed once; a new send after use starts afresh.
	if ok, _ := db.ConsumeSMSCode(ctx, "c2", t0.Add(time.Minute)); !ok {
		t.Fatalf("ConsumeSMSCode = false, want true")
	}
	if ok, _ := db.ConsumeSMSCode(ctx, "c2", t0.Add(time.Minute)); ok {
		t.Errorf("ConsumeSMSCode(again) = true, want false")
	}
	fresh, err := db.SaveSMSCode(ctx, code("c3", t0.Add(2*time.Minute), "333333"))
	if err != nil || fresh.Attempts != 0 || fresh.Sends != 1 || fresh.UsedAt != nil {
		t.Fatalf("SaveSMSCode(after use) = %+v, %v; want a fresh code", fresh, err)
	}
	// Twenty concurrent attempts on a code with max 5: exactly five count.
	var n atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := db.ReserveSMSCodeAttempt(ctx, "c3", 5, t0.Add(2*time.Minute)); ok && err == nil {
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if n.Load() != 5 {
		t.Errorf("concurrent ReserveSMSCodeAttempt let %d through, want 5", n.Load())
	}
}

func testUserPhone(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	a := newUser(t, db, "phone-a")
	b := newUser(t, db, "phone-b")
	const phone = "+14155552671"
	if err := db.SetUserPhone(ctx, a.ID, phone, false, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UserByPhone(ctx, phone); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("UserByPhone(unverified) = %v, want ErrNotFound", err)
	}
	if err := db.SetUserPhone(ctx, a.ID, phone, true, t0); err != nil {
		t.Fatal(err)
	}
	got, err := db.UserByPhone(ctx, phone)
	if err != nil || got.ID != a.ID || !got.PhoneVerified {
		t.Fatalf("UserByPhone = %+v, %v; want user a, verified", got, err)
	}
	// Another account may hold the number unverified, never verified.
	if err := db.SetUserPhone(ctx, b.ID, phone, false, t0); err != nil {
		t.Errorf("SetUserPhone(b, unverified) = %v, want nil", err)
	}
	if err := db.SetUserPhone(ctx, b.ID, phone, true, t0); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("SetUserPhone(b, verified) = %v, want ErrConflict", err)
	}
	if err := db.SetUserPhone(ctx, "nobody", phone, false, t0); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SetUserPhone(unknown user) = %v, want ErrNotFound", err)
	}
}
