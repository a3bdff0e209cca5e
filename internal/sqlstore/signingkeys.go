package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/token"
)

// SigningKeys returns every signing key, retired or not, oldest first.
func (s store) SigningKeys(ctx context.Context) ([]token.StoredKey, error) {
	rows, err := s.query(ctx, `SELECT id, public_key, sealed_private, created_at, retired_at
		FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", mapErr(err))
	}
	keys, err := scanRows(rows, func(row scanner) (token.StoredKey, error) {
		var k token.StoredKey
		var public []byte
		var created int64
		var retired sql.NullInt64
		if err := row.Scan(&k.ID, &public, &k.Sealed, &created, &retired); err != nil {
			return token.StoredKey{}, err
		}
		k.Public = public
		k.CreatedAt = fromMicros(created)
		k.RetiredAt = timePtr(retired)
		return k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return keys, nil
}

// InsertSigningKey stores k; a taken id is auth.ErrConflict.
func (s store) InsertSigningKey(ctx context.Context, k token.StoredKey) error {
	_, err := s.exec(ctx, `INSERT INTO signing_keys (id, public_key, sealed_private, created_at, retired_at)
		VALUES (?, ?, ?, ?, ?)`,
		k.ID, []byte(k.Public), k.Sealed, micros(k.CreatedAt), nullMicros(k.RetiredAt))
	if err != nil {
		return fmt.Errorf("insert signing key %s: %w", k.ID, mapErr(err))
	}
	return nil
}

// RetireSigningKeys sets retired_at = at on every unretired key but
// exceptID (which may be empty: retire all).
func (s store) RetireSigningKeys(ctx context.Context, exceptID string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND id <> ?`,
		micros(at), exceptID)
	if err != nil {
		return fmt.Errorf("retire signing keys: %w", mapErr(err))
	}
	return nil
}
