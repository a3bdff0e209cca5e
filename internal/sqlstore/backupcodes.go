package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// replaceBackupCodes deletes the user's codes and stores hashes, created at
// at. It must run inside a transaction.
func (s store) replaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error {
	if _, err := s.exec(ctx, `DELETE FROM backup_codes WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("replace backup codes of user %s: delete: %w", userID, mapErr(err))
	}
	for _, h := range hashes {
		_, err := s.exec(ctx, `INSERT INTO backup_codes (hash, user_id, created_at, used_at) VALUES (?, ?, ?, NULL)`,
			h, userID, micros(at))
		if err != nil {
			return fmt.Errorf("replace backup codes of user %s: insert: %w", userID, mapErr(err))
		}
	}
	return nil
}

// UseBackupCode marks the user's unused code with this hash used at at and
// reports whether it did; of concurrent callers exactly one gets true.
func (s store) UseBackupCode(ctx context.Context, userID string, hash []byte, at time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE backup_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`,
		micros(at), userID, hash)
	if err != nil {
		return false, fmt.Errorf("use backup code of user %s: %w", userID, err)
	}
	return ok, nil
}

// CountBackupCodes counts the user's unused codes.
func (s store) CountBackupCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT count(*) FROM backup_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count backup codes of user %s: %w", userID, mapErr(err))
	}
	return n, nil
}
