package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", envOr("VIGIL_API", "http://127.0.0.1:9464"), "controller API base URL (env VIGIL_API)")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	var raw json.RawMessage
	if err := apiCall(*api, http.MethodGet, "/api/v1/status", nil, &raw); err != nil {
		fmt.Fprintln(stderr, "vigil status:", err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(append(raw, '\n'))
		return 0
	}
	var st struct {
		Name  string    `json:"name"`
		Time  time.Time `json:"time"`
		Hosts []struct {
			Host     string    `json:"host"`
			LastSeen time.Time `json:"last_seen"`
			Series   int       `json:"series"`
		} `json:"hosts"`
		Rules []struct {
			Group, Rule, Severity, Subject, State, Error string
			Since                                        time.Time
		} `json:"rules"`
		Leader *struct {
			Leader      bool      `json:"leader"`
			Epoch       uint64    `json:"epoch"`
			Holder      string    `json:"holder"`
			Since       time.Time `json:"since"`
			Transitions uint64    `json:"transitions"`
			Disabled    bool      `json:"disabled"`
		} `json:"leader"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		fmt.Fprintln(stderr, "vigil status: bad answer:", err)
		return 1
	}
	fmt.Fprintf(stdout, "controller %s at %s\n", st.Name, st.Time.Format(time.RFC3339))
	if l := st.Leader; l != nil {
		switch {
		case l.Disabled:
			fmt.Fprintln(stdout, "leader: yes (lease off)")
		case l.Leader:
			fmt.Fprintf(stdout, "leader: yes, epoch %d, for %s\n", l.Epoch, st.Time.Sub(l.Since).Round(time.Second))
		default:
			holder := l.Holder
			if holder == "" {
				holder = "none seen"
			}
			fmt.Fprintf(stdout, "leader: no (follower for %s; leader %s, epoch %d)\n", st.Time.Sub(l.Since).Round(time.Second), holder, l.Epoch)
		}
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLAST SEEN\tSERIES")
	for _, h := range st.Hosts {
		fmt.Fprintf(tw, "%s\t%s ago\t%d\n", h.Host, st.Time.Sub(h.LastSeen).Round(time.Second), h.Series)
	}
	fmt.Fprintln(tw, "\nRULE\tSUBJECT\tSTATE\tSINCE\tSEVERITY\tERROR")
	for _, r := range st.Rules {
		since := "-"
		if !r.Since.IsZero() {
			since = st.Time.Sub(r.Since).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\n", r.Group, r.Rule, r.Subject, r.State, since, r.Severity, r.Error)
	}
	_ = tw.Flush()
	return 0
}
