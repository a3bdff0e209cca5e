-- Administration (version 3, PostgreSQL). Keep in step with sqlite/0003_admin.sql.
--
-- settings holds the administrator's 2FA policy as one JSON object, written
-- and read by package auth (the store does not look inside). There is at
-- most one row. version is 1 for the first save and grows by one with every
-- change: a save names the version it replaces, so a change based on a
-- stale read is refused instead of silently undoing another (compare and
-- set), and a server instance can tell a newer document from one it has.
CREATE TABLE settings (
	id         integer PRIMARY KEY CHECK (id = 1),
	document   text NOT NULL,
	version    bigint NOT NULL CHECK (version >= 1),
	updated_at bigint NOT NULL
);

-- The admin user list pages through users in (created_at, id) order.
CREATE INDEX users_created_at ON users (created_at, id);

-- Audit events by who caused them (an administrator).
CREATE INDEX audit_events_actor_id ON audit_events (actor_id, time);
