package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/twostep-auth/twostep/internal/sms"
	"github.com/twostep-auth/twostep/internal/totp"
)

// SMSSender delivers a text or places a call. Its errors are sms's:
// sms.ErrInvalidNumber becomes ErrInvalidPhone, anything else
// ErrSMSUnavailable.
type SMSSender interface {
	Send(ctx context.Context, m sms.Message) error
}

// SMSConfig are the rules for SMS and voice codes.
type SMSConfig struct {
	CodeTTL          time.Duration // 5 min
	ResendCooldown   time.Duration // 30 s per phone
	HourlyLimit      int           // sends per phone per hour
	PhoneDailyLimit  int           // sends per phone per day
	IPHourlyLimit    int           // sends asked for by one client address per hour; 0: no ceiling
	DailyLimit       int           // sends by the whole deployment per day; 0: no ceiling
	AllowedCountries []string      // ISO 3166 regions codes may go to; empty: all
	MaxAttempts      int           // wrong tries that kill a code (5)
	Template         string        // "Your {issuer} code is {code}"
	Host             string        // for the WebOTP line "@host #code"
	CallEnabled      bool          // the sender can place calls
}

// newSMSCode returns six digits from the service's random source, uniform
// over 000000-999999 (rejection sampling, no modulo bias).
func (s *Service) newSMSCode() (string, error) {
	const limit = 4294000000 // largest multiple of 10^6 below 2^32
	var b [4]byte
	for {
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return "", fmt.Errorf("read random: %w", err)
		}
		if n := binary.BigEndian.Uint32(b[:]); n < limit {
			return fmt.Sprintf("%06d", n%1000000), nil
		}
	}
}

// smsCodeHash binds a code to its purpose and subject under the server's
// key, so a stored hash is useless offline and cannot complete another
// purpose.
func (s *Service) smsCodeHash(purpose, subject, code string) []byte {
	m := hmac.New(sha256.New, s.smsKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

func challengeSubject(hash []byte) string { return hex.EncodeToString(hash) }

// sudoSubject binds a PurposeSudo code to the session that asked for it.
func sudoSubject(sessionID string) string { return "session:" + sessionID }

// smsCooldownPolicy allows one send per ResendCooldown per phone.
func (s *Service) smsCooldownPolicy(st AttemptState, now time.Time) (time.Duration, bool) {
	if st.LastAt.IsZero() {
		return 0, true
	}
	if wait := st.LastAt.Add(s.sms.ResendCooldown).Sub(now); wait > 0 {
		return wait, false
	}
	return 0, true
}

// smsCooldownKey is the attempt counter that spaces sends to one phone.
func smsCooldownKey(phone string) string { return "sms-cool:" + phone }

// SMSMetrics counts what happens to sends, for /metrics.
type SMSMetrics interface {
	// SMSSent counts a code the provider took, by channel.
	SMSSent(channel string)
	// SMSRefused counts a send refused before it reached a provider, by
	// reason (cooldown, phone_hourly, phone_daily, ip_hourly, daily_limit,
	// country, provider_failed).
	SMSRefused(reason string)
}

type noSMSMetrics struct{}

func (noSMSMetrics) SMSSent(string)    {}
func (noSMSMetrics) SMSRefused(string) {}

// chargeSend counts one send to phone against every limit: the country
// allow-list, the per-phone cooldown, hourly and daily caps, the per-address
// ceiling and the deployment's daily ceiling. It answers a *RateLimitError
// (or ErrInvalidPhone for a country not allowed, ErrSMSUnavailable past the
// daily ceiling) when one refuses it. Sign-in for an unknown number is
// charged too, so that the limits do not tell which numbers are known.
func (s *Service) chargeSend(ctx context.Context, phone string, meta RequestMeta, now time.Time) error {
	if len(s.sms.AllowedCountries) > 0 && !slices.Contains(s.sms.AllowedCountries, PhoneCountry(phone)) {
		s.smsMetrics.SMSRefused("country")
		return fmt.Errorf("%w: codes are not sent to numbers in this country", ErrInvalidPhone)
	}
	if err := s.chargeCooldownAndHour(ctx, phone, now); err != nil {
		return err
	}
	day := now.Truncate(24 * time.Hour)
	n, err := s.store.HitWindow(ctx, "sms-day:"+phone, day)
	if err != nil {
		return fmt.Errorf("send code: daily count: %w", err)
	}
	if n > int64(s.sms.PhoneDailyLimit) && s.sms.PhoneDailyLimit > 0 {
		s.smsMetrics.SMSRefused("phone_daily")
		return &RateLimitError{RetryAfter: day.Add(24 * time.Hour).Sub(now), Reason: "too many codes sent to this phone today"}
	}
	if s.sms.IPHourlyLimit > 0 && meta.IP != "" {
		hour := now.Truncate(time.Hour)
		n, err := s.store.HitWindow(ctx, "sms-ip:"+meta.IP, hour)
		if err != nil {
			return fmt.Errorf("send code: per-address count: %w", err)
		}
		if n > int64(s.sms.IPHourlyLimit) {
			s.smsMetrics.SMSRefused("ip_hourly")
			return &RateLimitError{RetryAfter: hour.Add(time.Hour).Sub(now), Reason: "too many codes asked for from this address"}
		}
	}
	if s.sms.DailyLimit > 0 {
		n, err := s.store.HitWindow(ctx, "sms-global", day)
		if err != nil {
			return fmt.Errorf("send code: deployment count: %w", err)
		}
		if n > int64(s.sms.DailyLimit) {
			s.smsMetrics.SMSRefused("daily_limit")
			s.logger.ErrorContext(ctx, "SMS daily limit reached: no more codes are sent today; raise TWOSTEP_SMS_DAILY_LIMIT if this is real traffic",
				"event", "sms_daily_limit_reached", "limit", s.sms.DailyLimit)
			return fmt.Errorf("send code: %w: the daily SMS limit is reached", ErrSMSUnavailable)
		}
	}
	return nil
}

// chargeCooldownAndHour applies the per-phone cooldown and hourly cap.
func (s *Service) chargeCooldownAndHour(ctx context.Context, phone string, now time.Time) error {
	wait, err := s.store.ReserveAttempt(ctx, smsCooldownKey(phone), now, s.smsCooldownPolicy)
	if err != nil {
		return fmt.Errorf("send code: cooldown: %w", err)
	}
	if wait > 0 {
		s.smsMetrics.SMSRefused("cooldown")
		return &RateLimitError{RetryAfter: wait, Reason: "a code was sent to this phone moments ago"}
	}
	hour := now.Truncate(time.Hour)
	n, err := s.store.HitWindow(ctx, "sms-hour:"+phone, hour)
	if err != nil {
		return fmt.Errorf("send code: hourly count: %w", err)
	}
	if n > int64(s.sms.HourlyLimit) {
		s.smsMetrics.SMSRefused("phone_hourly")
		return &RateLimitError{RetryAfter: hour.Add(time.Hour).Sub(now), Reason: "too many codes sent to this phone this hour"}
	}
	return nil
}

// sendCode issues a new code for (purpose, subject) and sends it to phone
// by channel (MethodSMS or MethodCall). A live code is replaced and keeps
// its attempts. Sends to one phone are limited to one per cooldown and
// HourlyLimit an hour, whatever the channel.
//
// Nothing is left half-done: the code is stored only once the provider
// took it, so a failed send leaves the live code (if any) as it was and no
// new one, and it charges no cooldown, so the user may ask again at once.
// No transaction is open while the provider is called.
func (s *Service) sendCode(ctx context.Context, purpose, subject, userID, phone, channel string, meta RequestMeta) (time.Duration, error) {
	if s.sender == nil {
		return 0, fmt.Errorf("send code: no SMS provider: %w", ErrSMSUnavailable)
	}
	if channel == MethodCall && !s.sms.CallEnabled {
		return 0, invalid("method", "voice calls are not available")
	}
	now := s.clock()
	if err := s.chargeSend(ctx, phone, meta, now); err != nil {
		return 0, err
	}
	code, err := s.newSMSCode()
	if err != nil {
		return 0, err
	}
	m := sms.Message{To: phone, Channel: sms.Channel(channel), Code: code, Purpose: purpose}
	if channel == MethodCall {
		m.Body = sms.SpeakCode(s.cfg.Issuer, code)
	} else {
		m.Body = sms.Text(s.sms.Template, s.cfg.Issuer, code, s.sms.Host)
	}
	if err := s.sender.Send(ctx, m); err != nil {
		s.smsMetrics.SMSRefused("provider_failed")
		s.logger.WarnContext(ctx, "code not delivered", "event", "sms_failed", "to", MaskPhone(phone), "channel", channel, "purpose", purpose, "err", err)
		// The cooldown was free when this send reserved it, so clearing it
		// puts it back as it was.
		if rerr := s.store.ResetAttempts(context.WithoutCancel(ctx), smsCooldownKey(phone)); rerr != nil {
			s.logger.ErrorContext(ctx, "clear sms cooldown after a failed send", "to", MaskPhone(phone), "err", rerr)
		}
		if errors.Is(err, sms.ErrInvalidNumber) {
			return 0, fmt.Errorf("send code: %w", ErrInvalidPhone)
		}
		return 0, fmt.Errorf("send code: %w: %w", ErrSMSUnavailable, err)
	}
	c := SMSCode{
		ID: s.newID(), Purpose: purpose, Subject: subject, UserID: userID, Phone: phone,
		CodeHash: s.smsCodeHash(purpose, subject, code), CreatedAt: now, LastSentAt: now, ExpiresAt: now.Add(s.sms.CodeTTL),
	}
	if _, err := s.store.SaveSMSCode(context.WithoutCancel(ctx), c); err != nil {
		return 0, fmt.Errorf("send code: a code went out but was not stored: %w", err)
	}
	s.smsMetrics.SMSSent(channel)
	s.audit(ctx, s.event(EventChallengeSent, userID, meta, map[string]any{"channel": channel, "purpose": purpose, "to": MaskPhone(phone)}))
	return s.sms.ResendCooldown, nil
}

// smsMatch finds the live code for (purpose, subject), counts one attempt
// on it, and checks code in constant time. It returns the code row, whose
// ID the caller consumes in its transaction. A wrong, dead or missing code
// is ErrInvalidCode.
func (s *Service) smsMatch(ctx context.Context, purpose, subject, code string) (SMSCode, error) {
	norm, ok := totp.Normalize(code)
	c, err := s.store.SMSCodeFor(ctx, purpose, subject)
	if errors.Is(err, ErrNotFound) {
		return SMSCode{}, ErrInvalidCode
	}
	if err != nil {
		return SMSCode{}, fmt.Errorf("sms code: %w", err)
	}
	reserved, err := s.store.ReserveSMSCodeAttempt(ctx, c.ID, s.sms.MaxAttempts, s.clock())
	if err != nil {
		return SMSCode{}, fmt.Errorf("sms code: %w", err)
	}
	if !reserved || !ok {
		return SMSCode{}, ErrInvalidCode
	}
	if !hmac.Equal(s.smsCodeHash(purpose, subject, norm), c.CodeHash) {
		return SMSCode{}, ErrInvalidCode
	}
	return c, nil
}

// consumeSMS makes a matched code single use inside tx.
func consumeSMS(ctx context.Context, tx Tx, id string, at time.Time) error {
	ok, err := tx.ConsumeSMSCode(ctx, id, at)
	if err != nil {
		return err
	}
	if !ok {
		return errReplay
	}
	return nil
}
