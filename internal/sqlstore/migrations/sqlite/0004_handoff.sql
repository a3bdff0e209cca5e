-- Handoff codes (version 4, SQLite). Keep in step with postgres/0004_handoff.sql.
--
-- A handoff code carries a sign-in made on the hosted pages (/login) to an
-- application, which exchanges it server-side for tokens. Only the SHA-256
-- of the code is stored; it lives 60 seconds and works once (used_at is
-- set by one conditional update). session_id is the browser session that
-- signed in: the application's new session copies its sign-in.
CREATE TABLE handoff_codes (
	hash       BLOB PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
) STRICT;
CREATE INDEX handoff_codes_expires_at ON handoff_codes (expires_at);
CREATE INDEX handoff_codes_session_id ON handoff_codes (session_id);
