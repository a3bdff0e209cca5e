package plivo

import (
	"crypto/rand"
	"errors"
	"net/http"
	"path"
	"sync"
	"time"
)

// AnswerPath is where twostep serves the answer XML of Plivo calls:
// mount AnswerHandler at "GET "+AnswerPath+"{id}".
const AnswerPath = "/sms/plivo/answer/"

// DefaultAnswerTTL is how long an answer waits for Plivo to fetch it when
// NewAnswerStore is given no TTL: a call rings for at most a minute, and a
// code lives five.
const DefaultAnswerTTL = 5 * time.Minute

// maxAnswers bounds the store, so that a flood of calls cannot grow it
// without limit.
const maxAnswers = 10000

// errStoreFull is returned by Put when maxAnswers live answers are held.
var errStoreFull = errors.New("answer store full")

// AnswerStore holds the answer XML of calls in progress, each under an
// unguessable ID, until Plivo fetches it once or it expires. It is safe for
// concurrent use. It lives in memory: with several twostep instances, the
// answer URL must reach the instance that placed the call.
type AnswerStore struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	answers map[string]answer
}

type answer struct {
	doc     []byte
	expires time.Time
}

// NewAnswerStore returns an empty store whose answers expire after ttl
// (DefaultAnswerTTL when ttl is not positive).
func NewAnswerStore(ttl time.Duration) *AnswerStore {
	if ttl <= 0 {
		ttl = DefaultAnswerTTL
	}
	return &AnswerStore{ttl: ttl, now: time.Now, answers: make(map[string]answer)}
}

// Put stores doc and returns its ID: 128 bits from crypto/rand, safe in a
// URL path. It fails only when the store is full of live answers.
func (s *AnswerStore) Put(doc []byte) (string, error) {
	id := rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.answers) >= maxAnswers {
		for k, a := range s.answers {
			if !now.Before(a.expires) {
				delete(s.answers, k)
			}
		}
		if len(s.answers) >= maxAnswers {
			return "", errStoreFull
		}
	}
	s.answers[id] = answer{doc: doc, expires: now.Add(s.ttl)}
	return id, nil
}

// Take returns the document stored under id and removes it: each answer is
// given out once. It reports false for an unknown, taken or expired ID.
func (s *AnswerStore) Take(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.answers[id]
	if !ok {
		return nil, false
	}
	delete(s.answers, id)
	if !s.now().Before(a.expires) {
		return nil, false
	}
	return a.doc, true
}

// Len returns how many answers are held, expired ones not yet swept
// included.
func (s *AnswerStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.answers)
}

// AnswerHandler serves GET AnswerPath+"{id}": the answer XML stored under
// id, as application/xml, once; 404 afterwards and for unknown or expired
// IDs. The ID is taken from the route's {id} wildcard, or else from the
// last element of the path. The unguessable, single-use ID is what
// authenticates Plivo.
func AnswerHandler(store *AnswerStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		id := r.PathValue("id")
		if id == "" {
			id = path.Base(r.URL.Path)
		}
		doc, ok := store.Take(id)
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(doc)
	})
}
