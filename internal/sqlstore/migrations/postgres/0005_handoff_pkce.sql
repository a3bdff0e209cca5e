-- PKCE for handoff codes (version 5, PostgreSQL). Keep in step with sqlite/0005_handoff_pkce.sql.
--
-- code_challenge is the S256 code challenge (RFC 7636) the application
-- passed to /login with its return_to, or NULL when it passed none: the
-- exchange then needs the matching code_verifier.
ALTER TABLE handoff_codes ADD COLUMN code_challenge text;
