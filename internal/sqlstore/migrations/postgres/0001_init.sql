-- twostep schema, version 1 (PostgreSQL). Keep in step with sqlite/0001_init.sql.
--
-- Timestamps are BIGINT microseconds since the Unix epoch, UTC; NULL means
-- "not yet". Lists (roles, amr) are comma-joined text.

-- Email and username are unique case-insensitively: the unique indexes are
-- on lower(), and lookups use the same expression. NULL means none.
CREATE TABLE users (
	id             text PRIMARY KEY,
	email          text,
	username       text,
	phone          text NOT NULL DEFAULT '',
	phone_verified boolean NOT NULL DEFAULT false,
	password_hash  text,
	roles          text NOT NULL DEFAULT '',
	disabled       boolean NOT NULL DEFAULT false,
	created_at     bigint NOT NULL,
	updated_at     bigint NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE sessions (
	id               text PRIMARY KEY,
	user_id          text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at       bigint NOT NULL,
	expires_at       bigint NOT NULL,
	auth_at          bigint NOT NULL,
	second_factor_at bigint,
	amr              text NOT NULL DEFAULT '',
	revoked_at       bigint,
	ip               text NOT NULL DEFAULT '',
	user_agent       text NOT NULL DEFAULT '',
	enrollment_only  boolean NOT NULL DEFAULT false
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- hash is the SHA-256 of the opaque token.
CREATE TABLE refresh_tokens (
	hash       bytea PRIMARY KEY,
	session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	used_at    bigint
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE challenges (
	hash       bytea PRIMARY KEY,
	user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	attempts   integer NOT NULL DEFAULT 0,
	used_at    bigint,
	amr        text NOT NULL DEFAULT '',
	ip         text NOT NULL DEFAULT '',
	user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX challenges_user_id ON challenges (user_id);

-- last_step is the last accepted TOTP time step; a step is accepted only if
-- it is greater (single use).
CREATE TABLE factors (
	id            text PRIMARY KEY,
	user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	method        text NOT NULL,
	label         text NOT NULL DEFAULT '',
	sealed_secret bytea,
	phone         text NOT NULL DEFAULT '',
	confirmed_at  bigint,
	last_step     bigint NOT NULL DEFAULT 0,
	created_at    bigint NOT NULL,
	last_used_at  bigint
);
CREATE INDEX factors_user_id ON factors (user_id, created_at);

-- hash is the keyed hash of the normalised code.
CREATE TABLE backup_codes (
	hash       bytea PRIMARY KEY,
	user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at bigint NOT NULL,
	used_at    bigint
);
CREATE INDEX backup_codes_user_id ON backup_codes (user_id);

-- The audit log outlives the users it names: no foreign keys. detail is a
-- JSON object, kept as text like on SQLite.
CREATE TABLE audit_events (
	id         text PRIMARY KEY,
	time       bigint NOT NULL,
	type       text NOT NULL,
	user_id    text,
	actor_id   text,
	ip         text NOT NULL DEFAULT '',
	user_agent text NOT NULL DEFAULT '',
	detail     text
);
CREATE INDEX audit_events_time ON audit_events (time DESC, id);
CREATE INDEX audit_events_user_id ON audit_events (user_id, time);
CREATE INDEX audit_events_type ON audit_events (type, time);

-- Consecutive-failure counters (login throttling, second-factor lockout).
CREATE TABLE attempts (
	key      text PRIMARY KEY,
	failures integer NOT NULL DEFAULT 0,
	last_at  bigint
);

-- Fixed-window hit counters (per-IP limits).
CREATE TABLE rate_windows (
	key          text NOT NULL,
	window_start bigint NOT NULL,
	count        bigint NOT NULL,
	PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_windows_window_start ON rate_windows (window_start);

-- JWT signing keys; sealed_private is the Ed25519 private key sealed with the
-- encryption keyring.
CREATE TABLE signing_keys (
	id             text PRIMARY KEY,
	public_key     bytea NOT NULL,
	sealed_private bytea NOT NULL,
	created_at     bigint NOT NULL,
	retired_at     bigint
);

-- Server-wide secrets (for example the backup-code HMAC key), sealed with
-- the encryption keyring; created once by whichever instance asks first.
CREATE TABLE server_keys (
	name   text PRIMARY KEY,
	sealed bytea NOT NULL
);
