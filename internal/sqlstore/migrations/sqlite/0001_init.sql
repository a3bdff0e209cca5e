-- twostep schema, version 1 (SQLite). Keep in step with postgres/0001_init.sql.
--
-- Timestamps are INTEGER microseconds since the Unix epoch, UTC (SQLite's
-- INTEGER is 64-bit, PostgreSQL's BIGINT); NULL means "not yet". Booleans
-- are 0/1. Lists (roles, amr) are comma-joined text. Tables are STRICT so a
-- value of the wrong type is refused instead of stored.

-- Email and username are unique case-insensitively: the unique indexes are
-- on lower(), and lookups use the same expression. NULL means none.
CREATE TABLE users (
	id             TEXT PRIMARY KEY,
	email          TEXT,
	username       TEXT,
	phone          TEXT NOT NULL DEFAULT '',
	phone_verified INTEGER NOT NULL DEFAULT 0 CHECK (phone_verified IN (0, 1)),
	password_hash  TEXT,
	roles          TEXT NOT NULL DEFAULT '',
	disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE sessions (
	id               TEXT PRIMARY KEY,
	user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	auth_at          INTEGER NOT NULL,
	second_factor_at INTEGER,
	amr              TEXT NOT NULL DEFAULT '',
	revoked_at       INTEGER,
	ip               TEXT NOT NULL DEFAULT '',
	user_agent       TEXT NOT NULL DEFAULT '',
	enrollment_only  INTEGER NOT NULL DEFAULT 0 CHECK (enrollment_only IN (0, 1))
) STRICT;
CREATE INDEX sessions_user_id ON sessions (user_id);

-- hash is the SHA-256 of the opaque token.
CREATE TABLE refresh_tokens (
	hash       BLOB PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
) STRICT;
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE challenges (
	hash       BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	used_at    INTEGER,
	amr        TEXT NOT NULL DEFAULT '',
	ip         TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX challenges_user_id ON challenges (user_id);

-- last_step is the last accepted TOTP time step; a step is accepted only if
-- it is greater (single use).
CREATE TABLE factors (
	id            TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	method        TEXT NOT NULL,
	label         TEXT NOT NULL DEFAULT '',
	sealed_secret BLOB,
	phone         TEXT NOT NULL DEFAULT '',
	confirmed_at  INTEGER,
	last_step     INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	last_used_at  INTEGER
) STRICT;
CREATE INDEX factors_user_id ON factors (user_id, created_at);

-- hash is the keyed hash of the normalised code.
CREATE TABLE backup_codes (
	hash       BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	used_at    INTEGER
) STRICT;
CREATE INDEX backup_codes_user_id ON backup_codes (user_id);

-- The audit log outlives the users it names: no foreign keys. detail is a
-- JSON object.
CREATE TABLE audit_events (
	id         TEXT PRIMARY KEY,
	time       INTEGER NOT NULL,
	type       TEXT NOT NULL,
	user_id    TEXT,
	actor_id   TEXT,
	ip         TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	detail     TEXT
) STRICT;
CREATE INDEX audit_events_time ON audit_events (time DESC, id);
CREATE INDEX audit_events_user_id ON audit_events (user_id, time);
CREATE INDEX audit_events_type ON audit_events (type, time);

-- Consecutive-failure counters (login throttling, second-factor lockout).
CREATE TABLE attempts (
	key      TEXT PRIMARY KEY,
	failures INTEGER NOT NULL DEFAULT 0,
	last_at  INTEGER
) STRICT;

-- Fixed-window hit counters (per-IP limits).
CREATE TABLE rate_windows (
	key          TEXT NOT NULL,
	window_start INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	PRIMARY KEY (key, window_start)
) STRICT;
CREATE INDEX rate_windows_window_start ON rate_windows (window_start);

-- JWT signing keys; sealed_private is the Ed25519 private key sealed with the
-- encryption keyring.
CREATE TABLE signing_keys (
	id             TEXT PRIMARY KEY,
	public_key     BLOB NOT NULL,
	sealed_private BLOB NOT NULL,
	created_at     INTEGER NOT NULL,
	retired_at     INTEGER
) STRICT;

-- Server-wide secrets (for example the backup-code HMAC key), sealed with
-- the encryption keyring; created once by whichever instance asks first.
CREATE TABLE server_keys (
	name   TEXT PRIMARY KEY,
	sealed BLOB NOT NULL
) STRICT;
