-- SMS and voice codes (version 2, SQLite). Keep in step with postgres/0002_sms_codes.sql.
--
-- One live code per (purpose, subject): the subject is the challenge hash
-- (hex) for a login, the user id for enrolment and phone changes, and the
-- phone for phone sign-in and sign-up. A resend replaces code_hash and
-- expires_at and keeps attempts. code_hash is an HMAC under a server key.
CREATE TABLE sms_codes (
	id           TEXT PRIMARY KEY,
	purpose      TEXT NOT NULL,
	subject      TEXT NOT NULL,
	user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
	phone        TEXT NOT NULL,
	code_hash    BLOB NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	sends        INTEGER NOT NULL DEFAULT 1,
	created_at   INTEGER NOT NULL,
	last_sent_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	used_at      INTEGER
) STRICT;
CREATE UNIQUE INDEX sms_codes_subject ON sms_codes (purpose, subject);
CREATE INDEX sms_codes_expires_at ON sms_codes (expires_at);

-- A verified phone belongs to one account (phone sign-in looks it up).
CREATE UNIQUE INDEX users_verified_phone ON users (phone) WHERE phone_verified = 1 AND phone <> '';
CREATE INDEX users_phone ON users (phone);
