package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", envOr("VIGIL_API", "http://127.0.0.1:9464"), "controller API base URL (env VIGIL_API)")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *api+"/api/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "vigil status:", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "vigil status: %s %s %v\n", resp.Status, body, err)
		return 1
	}
	if *asJSON {
		_, _ = os.Stdout.Write(body)
		return 0
	}
	var st struct {
		Name  string
		Time  time.Time
		Hosts []struct {
			Host     string    `json:"host"`
			LastSeen time.Time `json:"last_seen"`
			Series   int       `json:"series"`
		}
		Rules []map[string]any
	}
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintln(stderr, "vigil status: bad answer:", err)
		return 1
	}
	fmt.Fprintf(stdout, "controller %s at %s\n\n", st.Name, st.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLAST SEEN\tSERIES")
	for _, h := range st.Hosts {
		fmt.Fprintf(tw, "%s\t%s ago\t%d\n", h.Host, st.Time.Sub(h.LastSeen).Round(time.Second), h.Series)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n%d rule states\n", len(st.Rules))
	for _, r := range st.Rules {
		fmt.Fprintf(stdout, "  %v\n", r)
	}
	return 0
}
