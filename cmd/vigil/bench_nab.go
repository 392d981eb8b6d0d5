package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/nab"
)

// cmdBenchNAB runs a detector over a NAB corpus ("vigil bench nab") or scores results
// ("vigil bench nab score").
func cmdBenchNAB(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "score" {
		return cmdBenchNABScore(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("vigil bench nab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "NAB data directory: DIR/<category>/<file>.csv (required)")
	out := fs.String("out", "", "results directory: OUT/<detector>/<category>/<detector>_<file>.csv (required)")
	name := fs.String("detector", "vigil", "detector name, one of: "+fmt.Sprint(detectors.DetectorNames()))
	if code, done := nabParseFlags(fs, args); done {
		return code
	}
	if *data == "" || *out == "" {
		fmt.Fprintln(stderr, "vigil bench nab: --data and --out are required")
		return 2
	}
	if _, err := detectors.NewDetector(*name); err != nil {
		fmt.Fprintln(stderr, "vigil bench nab:", err)
		return 2
	}
	files, err := nab.ListData(*data)
	if err != nil {
		fmt.Fprintln(stderr, "vigil bench nab:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	stats, err := nab.Run(ctx, files, *out, *name, runtime.GOMAXPROCS(0), func() (nab.ScoreFunc, error) {
		d, err := detectors.NewDetector(*name)
		if err != nil {
			return nil, err
		}
		return func(t int64, x float64) float64 { return d.Observe(t, x).Likelihood }, nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "vigil bench nab:", err)
		return 1
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "%s: %d files, %d rows in %s (%.0f rows/s) -> %s\n", *name, stats.Files, stats.Rows,
		el.Round(time.Millisecond), float64(stats.Rows)/el.Seconds(), filepath.Join(*out, *name))
	return 0
}

func cmdBenchNABScore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench nab score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	results := fs.String("results", "", "results of one detector: OUT/<detector> (required)")
	labels := fs.String("labels", "", "NAB labels, combined_windows.json (required)")
	asJSON := fs.Bool("json", false, "print the scores as JSON")
	detail := fs.String("detail", "", "also break one profile's score down by file and window: standard, reward_low_FP_rate or reward_low_FN_rate")
	if code, done := nabParseFlags(fs, args); done {
		return code
	}
	if *results == "" || *labels == "" {
		fmt.Fprintln(stderr, "vigil bench nab score: --results and --labels are required")
		return 2
	}
	prof := -1
	for i, p := range nab.Profiles {
		if p.Name == *detail {
			prof = i
		}
	}
	if *detail != "" && prof < 0 {
		fmt.Fprintf(stderr, "vigil bench nab score: --detail %q: not a profile (standard, reward_low_FP_rate, reward_low_FN_rate)\n", *detail)
		return 2
	}
	res, details, err := scoreNAB(*results, *labels, prof)
	if err != nil {
		fmt.Fprintln(stderr, "vigil bench nab score:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		out := map[string]any{"results": *results, "profiles": res}
		if prof >= 0 {
			out["detail"] = map[string]any{"profile": *detail, "files": details}
		}
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, "vigil bench nab score:", err)
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "profile\tscore\tthreshold\tTP\tFN\tFP\traw\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%.2f\t%.6g\t%d\t%d\t%d\t%.3f\t\n", r.Profile, r.Score, r.Result.Threshold, r.TP, r.FN, r.FP, r.Raw)
	}
	_ = tw.Flush()
	if prof >= 0 {
		printNABDetail(stdout, *detail, res[prof].Result.Threshold, details)
	}
	return 0
}

// printNABDetail writes one line per file: its raw share of the score, its false-positive rows
// and, per window, where in the window it was first detected (0 = its first row) or "miss".
func printNABDetail(w io.Writer, profile string, th float64, ds []nab.FileDetail) {
	fmt.Fprintf(w, "\n%s at threshold %.6g, by file (window: position of the first detection, 0 = window start, 1 = end)\n", profile, th)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "file\traw\tFP\twindows")
	for _, d := range ds {
		var ws []string
		for _, wd := range d.Windows {
			if wd.Row < 0 {
				ws = append(ws, "miss")
			} else {
				ws = append(ws, fmt.Sprintf("%.2f", wd.Position))
			}
		}
		fmt.Fprintf(tw, "%s\t%+.3f\t%d\t%s\n", d.Key, d.Raw, d.FP, strings.Join(ws, " "))
	}
	_ = tw.Flush()
}

// jsonResult is nab.Result with an infinite threshold written as null.
type jsonResult struct {
	nab.Result
	Threshold *float64 `json:"threshold"`
}

// scoreNAB scores the results under every profile and, if prof ≥ 0, breaks profile prof down by
// file at its chosen threshold.
func scoreNAB(results, labels string, prof int) ([]jsonResult, []nab.FileDetail, error) {
	ls, err := nab.LoadLabels(labels)
	if err != nil {
		return nil, nil, err
	}
	files, err := nab.LoadResults(results)
	if err != nil {
		return nil, nil, err
	}
	res, err := nab.Score(files, ls, nab.Profiles)
	if err != nil {
		return nil, nil, err
	}
	out := make([]jsonResult, len(res))
	for i, r := range res {
		out[i] = jsonResult{Result: r}
		if th := r.Threshold; th <= 1e308 {
			out[i].Threshold = &th
		}
	}
	var ds []nab.FileDetail
	if prof >= 0 {
		if ds, err = nab.Detail(files, ls, nab.Profiles[prof], res[prof].Threshold); err != nil {
			return nil, nil, err
		}
	}
	return out, ds, nil
}

// parseFlags parses args; done reports that the command must return code (help or bad flags).
func nabParseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, true
	}
	return 0, false
}
