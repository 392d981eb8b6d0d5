package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDemoModel(t *testing.T) {
	srv := httptest.NewServer(demoModelHandler("a"))
	defer srv.Close()
	status := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := status("GET", "/healthz"); c != 200 {
		t.Fatalf("healthz %d, want 200", c)
	}
	status("POST", "/fault")
	if c := status("GET", "/healthz"); c != 503 {
		t.Fatalf("healthz after /fault %d, want 503", c)
	}
	status("POST", "/recover")
	if c := status("GET", "/healthz"); c != 200 {
		t.Fatalf("healthz after /recover %d, want 200", c)
	}
	predict := func() map[string]any {
		resp, err := http.Post(srv.URL+"/v1/predict", "application/json", strings.NewReader(`{"x": 1}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("predict: %d %v", resp.StatusCode, err)
		}
		return out
	}
	a, b := predict(), predict()
	if a["member"] != "a" || a["score"] != b["score"] {
		t.Fatalf("predict %v then %v: want member a and the same score for the same input", a, b)
	}
	if s, ok := a["score"].(float64); !ok || s < 0 || s >= 1 {
		t.Fatalf("score %v, want in [0,1)", a["score"])
	}
}
