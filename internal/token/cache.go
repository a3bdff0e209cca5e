package token

import (
	"sync"
	"time"
)

// maxCached bounds the verified-token cache; when it is full it starts
// over, which keeps memory bounded (a few MB) without any bookkeeping.
const maxCached = 10000

type cachedClaims struct {
	kid    string
	claims Claims
}

// verifiedCache maps a raw token that passed Verify to its claims. A hit
// is only used while the token is unexpired and its key is still valid, so
// it answers exactly as a full verification would. It is safe for
// concurrent use.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[string]cachedClaims
}

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{m: make(map[string]cachedClaims)}
}

func (c *verifiedCache) get(raw string, now time.Time, ks *keySet) (Claims, bool) {
	c.mu.RLock()
	e, ok := c.m[raw]
	c.mu.RUnlock()
	if !ok || !now.Before(e.claims.ExpiresAt) || e.claims.IssuedAt.After(now.Add(iatLeeway)) {
		return Claims{}, false
	}
	key, ok := ks.verify[e.kid]
	if !ok || !key.validAt(now) {
		return Claims{}, false
	}
	return e.claims, true
}

func (c *verifiedCache) put(raw, kid string, claims Claims) {
	c.mu.Lock()
	if len(c.m) >= maxCached {
		c.m = make(map[string]cachedClaims)
	}
	c.m[raw] = cachedClaims{kid: kid, claims: claims}
	c.mu.Unlock()
}
