package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// cmdFailover is `vigil failover SERVICE [--to MEMBER]` (fail over now,
// through the controller API) and `vigil failover --list` (routes).
func cmdFailover(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil failover SERVICE [--to MEMBER] [--by NAME]   fail SERVICE over now\n       vigil failover --list                                  routes and member health")
		fs.PrintDefaults()
	}
	api := fs.String("api", envOr("VIGIL_API", "http://127.0.0.1:9464"), "controller API base URL (env VIGIL_API)")
	to := fs.String("to", "", "member to promote (default: a healthy hot standby, then warm, then cold)")
	by := fs.String("by", envOr("USER", "operator"), "who asks (recorded with the failover)")
	list := fs.Bool("list", false, "list the routes instead")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the failover")
	var service string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		service, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if service == "" && fs.NArg() == 1 {
		service = fs.Arg(0)
	}
	if *list {
		return listRoutes(*api, stdout, stderr)
	}
	if service == "" || fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != service) {
		fs.Usage()
		return 2
	}
	var out struct {
		Error  string         `json:"error"`
		Result map[string]any `json:"result"`
	}
	body := map[string]string{"service": service, "to": *to, "by": *by}
	code, err := postLong(*api+"/api/v1/failover", body, &out, *timeout)
	if err != nil {
		fmt.Fprintln(stderr, "vigil failover:", err)
		return 1
	}
	if r := out.Result; r != nil {
		fmt.Fprintf(stdout, "%v: %v -> %v (%v standby), epoch %v, rto %.3fs, verified %v\n",
			r["service"], r["from"], r["to"], r["standby"], r["epoch"], r["rto_seconds"], r["verified"])
	}
	if out.Error != "" || code/100 != 2 {
		fmt.Fprintf(stderr, "vigil failover: %d: %s\n", code, out.Error)
		return 1
	}
	return 0
}

func postLong(url string, body, out any, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return resp.StatusCode, nil
}

func listRoutes(api string, stdout, stderr io.Writer) int {
	var rs []struct {
		Route struct {
			Service, Active, Endpoint, State, Fenced, Target string
			Epoch                                            uint64
		} `json:"route"`
		Members map[string]struct {
			Up bool `json:"up"`
		} `json:"members"`
	}
	if err := apiCall(api, http.MethodGet, "/api/v1/routes", nil, &rs); err != nil {
		fmt.Fprintln(stderr, "vigil failover --list:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tACTIVE\tEPOCH\tENDPOINT\tMEMBERS UP")
	for _, r := range rs {
		var up []string
		for n, h := range r.Members {
			if h.Up {
				up = append(up, n)
			}
		}
		active := r.Route.Active
		if r.Route.State == "fenced" {
			active = "-> " + r.Route.Target
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Route.Service, r.Route.State, active, r.Route.Epoch, r.Route.Endpoint, strings.Join(up, ","))
	}
	_ = tw.Flush()
	return 0
}
