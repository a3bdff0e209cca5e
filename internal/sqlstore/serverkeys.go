package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
)

// serverKeyLen is the size of a server key in bytes.
const serverKeyLen = 32

// Sealer encrypts secrets at rest (the encryption keyring). Open must fail
// when aad differs from the aad given to Seal.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// ServerKey returns the server-wide secret called name: 32 bytes read from
// r the first time any instance asks, stored sealed by sealer (with
// additional data "server-key:" + name), and the same bytes ever after.
// Instances that create it at once agree on one key: the first insert
// wins and every caller returns what was stored.
func (db *DB) ServerKey(ctx context.Context, name string, sealer Sealer, r io.Reader) ([]byte, error) {
	aad := []byte("server-key:" + name)
	sealed, found, err := db.sealedServerKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if !found {
		key := make([]byte, serverKeyLen)
		if _, err := io.ReadFull(r, key); err != nil {
			return nil, fmt.Errorf("server key %s: read random: %w", name, err)
		}
		s, err := sealer.Seal(key, aad)
		if err != nil {
			return nil, fmt.Errorf("server key %s: seal: %w", name, err)
		}
		_, err = db.w.exec(ctx, `INSERT INTO server_keys (name, sealed) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, s)
		if err != nil {
			return nil, fmt.Errorf("server key %s: store: %w", name, mapErr(err))
		}
		// Read back: a concurrent instance may have stored its key first.
		if sealed, _, err = db.sealedServerKey(ctx, name); err != nil {
			return nil, err
		}
	}
	key, err := sealer.Open(sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("server key %s: open: %w", name, err)
	}
	return key, nil
}

// sealedServerKey reads from the writer so that a key just stored, by this
// or another instance, is seen.
func (db *DB) sealedServerKey(ctx context.Context, name string) (sealed []byte, found bool, err error) {
	err = db.w.queryRow(ctx, `SELECT sealed FROM server_keys WHERE name = ?`, name).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("server key %s: %w", name, mapErr(err))
	}
	return sealed, true, nil
}
