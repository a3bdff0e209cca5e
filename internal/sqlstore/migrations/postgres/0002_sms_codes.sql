-- SMS and voice codes (version 2, PostgreSQL). Keep in step with sqlite/0002_sms_codes.sql.
--
-- One live code per (purpose, subject): the subject is the challenge hash
-- (hex) for a login, the user id for enrolment and phone changes, and the
-- phone for phone sign-in and sign-up. A resend replaces code_hash and
-- expires_at and keeps attempts. code_hash is an HMAC under a server key.
CREATE TABLE sms_codes (
	id           text PRIMARY KEY,
	purpose      text NOT NULL,
	subject      text NOT NULL,
	user_id      text REFERENCES users (id) ON DELETE CASCADE,
	phone        text NOT NULL,
	code_hash    bytea NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	sends        integer NOT NULL DEFAULT 1,
	created_at   bigint NOT NULL,
	last_sent_at bigint NOT NULL,
	expires_at   bigint NOT NULL,
	used_at      bigint
);
CREATE UNIQUE INDEX sms_codes_subject ON sms_codes (purpose, subject);
CREATE INDEX sms_codes_expires_at ON sms_codes (expires_at);

-- A verified phone belongs to one account (phone sign-in looks it up).
CREATE UNIQUE INDEX users_verified_phone ON users (phone) WHERE phone_verified AND phone <> '';
CREATE INDEX users_phone ON users (phone);
