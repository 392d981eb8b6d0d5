package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"
)

// apiCall sends a request to the controller API and decodes its JSON answer.
func apiCall(base, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

func cmdActions(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil actions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", envOr("VIGIL_API", "http://127.0.0.1:9464"), "controller API base URL (env VIGIL_API)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	var recs []map[string]any
	if err := apiCall(*api, http.MethodGet, "/api/v1/actions", nil, &recs); err != nil {
		fmt.Fprintln(stderr, "vigil actions:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(recs)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPDATED\tHOST\tRULE\tACTION\tMODE\tSTATE\tOUTCOME\tKEY")
	for _, r := range recs {
		fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\t%v\t%v\n", r["updated"], r["host"], r["rule"], r["action"], r["mode"], r["state"], r["outcome"], r["key"])
	}
	_ = tw.Flush()
	return 0
}

// cmdDecide is `vigil approve KEY` and `vigil deny KEY`.
func cmdDecide(approve bool, args []string, stdout, stderr io.Writer) int {
	name := "deny"
	if approve {
		name = "approve"
	}
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vigil %s [flags] KEY   (keys: vigil actions)\n", name)
		fs.PrintDefaults()
	}
	api := fs.String("api", envOr("VIGIL_API", "http://127.0.0.1:9464"), "controller API base URL (env VIGIL_API)")
	by := fs.String("by", envOr("USER", "operator"), "who decides (recorded with the action)")
	reason := fs.String("reason", "", "why (deny)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	var out map[string]string
	body := map[string]string{"key": fs.Arg(0), "by": *by, "reason": *reason}
	if err := apiCall(*api, http.MethodPost, "/api/v1/actions/"+name, body, &out); err != nil {
		fmt.Fprintf(stderr, "vigil %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", out["status"], out["key"])
	if out["note"] != "" {
		fmt.Fprintln(stdout, out["note"])
	}
	return 0
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
