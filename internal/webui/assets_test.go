package webui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestAssets(t *testing.T) {
	a, err := NewAssets(fstest.MapFS{"app.css": {Data: []byte("body{}")}}, "/ui/static/")
	if err != nil {
		t.Fatal(err)
	}
	url := a.URL("app.css")
	if !strings.HasPrefix(url, "/ui/static/app.css?v=") || len(url) != len("/ui/static/app.css?v=")+12 {
		t.Fatalf("URL = %q", url)
	}
	if a.URL("nope.css") != "" {
		t.Error("URL of a missing file is not empty")
	}
	other, _ := NewAssets(fstest.MapFS{"app.css": {Data: []byte("body{ }")}}, "/ui/static/")
	if other.URL("app.css") == url {
		t.Error("the version does not change with the content")
	}

	for _, tc := range []struct {
		target    string
		has       bool
		status    int
		wantCache string
	}{
		{url, true, http.StatusOK, "public, max-age=31536000, immutable"},
		{"/ui/static/app.css?v=000000000000", true, http.StatusOK, "no-cache"},
		{"/ui/static/app.css", true, http.StatusOK, "no-cache"},
		{"/ui/static/nope.css", false, http.StatusNotFound, ""}, // the file server drops caching headers from an error
	} {
		r := httptest.NewRequest(http.MethodGet, tc.target, nil)
		if a.Has(r) != tc.has {
			t.Errorf("%s: Has = %v", tc.target, !tc.has)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, r)
		if rec.Code != tc.status || rec.Header().Get("Cache-Control") != tc.wantCache {
			t.Errorf("%s: %d, Cache-Control %q; want %d, %q", tc.target, rec.Code, rec.Header().Get("Cache-Control"), tc.status, tc.wantCache)
		}
		if tc.status == http.StatusOK && rec.Body.String() != "body{}" {
			t.Errorf("%s: body %q", tc.target, rec.Body)
		}
	}
}
