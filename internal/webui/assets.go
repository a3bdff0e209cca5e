package webui

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

// Assets serves the files of a folder (style sheets, scripts) under a URL
// prefix. Each file's URL carries a hash of its content (?v=…), so a
// request naming the current version may be cached for good: the URL
// changes with the content.
type Assets struct {
	prefix string
	urls   map[string]string // file name → versioned URL
	files  http.Handler
}

// NewAssets serves the files at the top of fsys under prefix (which ends
// in a slash).
func NewAssets(fsys fs.FS, prefix string) (*Assets, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	urls := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("static files: %w", err)
		}
		sum := sha256.Sum256(b)
		urls[e.Name()] = prefix + e.Name() + "?v=" + hex.EncodeToString(sum[:6])
	}
	return &Assets{prefix: prefix, urls: urls, files: http.StripPrefix(prefix, http.FileServerFS(fsys))}, nil
}

// URL is the versioned URL of the file name, or "" when there is none.
func (a *Assets) URL(name string) string { return a.urls[name] }

// Has reports whether the request's path names one of the files.
func (a *Assets) Has(r *http.Request) bool {
	_, ok := a.urls[strings.TrimPrefix(r.URL.Path, a.prefix)]
	return ok
}

// ServeHTTP serves a file, for good when the request names its current
// version, and to be checked again on every use otherwise.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	versioned, ok := a.urls[strings.TrimPrefix(r.URL.Path, a.prefix)]
	if v := r.URL.Query().Get("v"); ok && v != "" && versioned == r.URL.Path+"?v="+v {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	a.files.ServeHTTP(w, r)
}
