package main

import (
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/totp"
)

func TestUserPoolTakeUsesEachStepOnce(t *testing.T) {
	opts := totp.Options{Period: 30 * time.Second, Digits: 6, Algorithm: totp.SHA1}
	now := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC) // a step boundary
	s := totp.Step(now, opts.Period)
	secret := []byte("12345678901234567890")
	p := &userPool{period: opts.Period, opts: opts}
	for i := range 4 {
		p.users = append(p.users, &enrolled{secret: secret, lastStep: s - 1, pending: []string{"c" + string(rune('a'+i))}})
	}
	p.users[2].lastStep = s // enrolled during this step: not usable until the next

	var got []*enrolled
	for {
		u, code, _, ok := p.take(now.Add(time.Second), false)
		if !ok {
			break
		}
		if want := totp.Code(secret, now.Add(time.Second), opts); code != want {
			t.Errorf("take code = %q, want %q", code, want)
		}
		got = append(got, u)
	}
	if len(got) != 3 {
		t.Fatalf("take handed out %d users in one step, want 3 (one was used in this step already)", len(got))
	}
	for _, u := range got {
		if u == p.users[2] {
			t.Errorf("take handed out the user whose factor accepted this step already")
		}
		if u.lastStep != s {
			t.Errorf("handed-out user lastStep = %d, want %d", u.lastStep, s)
		}
	}

	// Next step: every user again, once; the circle continues where it stopped, so the user
	// served last in the previous step comes last again.
	next := now.Add(opts.Period)
	seen := map[*enrolled]bool{}
	var order []*enrolled
	for {
		u, _, challenge, ok := p.take(next, true)
		if !ok {
			break
		}
		if seen[u] {
			t.Fatalf("take handed out a user twice in one step")
		}
		if challenge == "" {
			t.Errorf("take(needChallenge) gave no challenge token")
		}
		seen[u] = true
		order = append(order, u)
	}
	if len(order) != 4 {
		t.Fatalf("take handed out %d users in the next step, want 4", len(order))
	}
	if order[len(order)-1] != got[len(got)-1] {
		t.Errorf("the user served last in one step was not served last in the next")
	}
	// Every challenge token is used now: nobody is left even in a later step.
	if _, _, _, ok := p.take(next.Add(opts.Period), true); ok {
		t.Errorf("take(needChallenge) handed out a user without a pending challenge token")
	}
	if !p.usedSince(totp.Step(next, opts.Period)) || p.usedSince(totp.Step(next, opts.Period)+1) {
		t.Errorf("usedSince disagrees with the steps handed out")
	}
}

func TestUserPoolTakeBackup(t *testing.T) {
	p := &userPool{period: 30 * time.Second, users: []*enrolled{
		{pending: []string{"c1", "c2"}, backup: []string{"b1"}},
		{pending: []string{"c3"}, backup: []string{"b2", "b3"}},
	}}
	var got [][2]string
	for {
		c, b, ok := p.takeBackup()
		if !ok {
			break
		}
		got = append(got, [2]string{c, b})
	}
	want := [][2]string{{"c1", "b1"}, {"c3", "b2"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("takeBackup handed out %v, want %v", got, want)
	}
}

func TestTOTPOptions(t *testing.T) {
	tests := []struct {
		url        string
		wantPeriod time.Duration
		wantDigits int
		wantAlg    totp.Algorithm
		wantErr    bool
	}{
		{"", 30 * time.Second, 6, totp.SHA1, false},
		{"otpauth://totp/twostep:a%40b.c?secret=ABC&issuer=twostep&algorithm=SHA1&digits=6&period=30", 30 * time.Second, 6, totp.SHA1, false},
		{"otpauth://totp/x?secret=ABC&period=60&digits=8&algorithm=sha256", 60 * time.Second, 8, totp.SHA256, false},
		{"otpauth://totp/x?secret=ABC", 30 * time.Second, 6, totp.SHA1, false},
		{"otpauth://totp/x?period=0", 0, 0, 0, true},
		{"otpauth://totp/x?digits=12", 0, 0, 0, true},
		{"otpauth://totp/x?algorithm=MD5", 0, 0, 0, true},
	}
	for _, tt := range tests {
		got, err := totpOptions(tt.url)
		if (err != nil) != tt.wantErr {
			t.Errorf("totpOptions(%q) error = %v, want error %v", tt.url, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && (got.Period != tt.wantPeriod || got.Digits != tt.wantDigits || got.Algorithm != tt.wantAlg) {
			t.Errorf("totpOptions(%q) = %+v, want period %v, digits %d, %v", tt.url, got, tt.wantPeriod, tt.wantDigits, tt.wantAlg)
		}
	}
}
