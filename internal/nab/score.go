package nab

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"time"
)

// Profile holds the cost weights of one NAB application profile.
type Profile struct {
	Name string  `json:"name"`
	TP   float64 `json:"tp_weight"` // A_TP: reward of a detection at a window's first row
	FP   float64 `json:"fp_weight"` // A_FP: cost of a false positive far from any window
	FN   float64 `json:"fn_weight"` // A_FN: cost of a window with no detection
}

// Profiles are NAB's three application profiles (config/profiles.json of NAB v1.1).
var Profiles = []Profile{
	{Name: "standard", TP: 1, FP: 0.11, FN: 1},
	{Name: "reward_low_FP_rate", TP: 1, FP: 0.22, FN: 1},
	{Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2},
}

// Window is one labelled anomaly window, both ends included.
type Window struct{ Start, End time.Time }

// LoadLabels reads a combined_windows.json file: {"<category>/<file>.csv": [[start, end], ...]}.
func LoadLabels(path string) (map[string][]Window, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nab: labels: %w", err)
	}
	var raw map[string][][]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("nab: labels %s: %w", path, err)
	}
	out := make(map[string][]Window, len(raw))
	for key, ws := range raw {
		for i, w := range ws {
			if len(w) != 2 {
				return nil, fmt.Errorf("nab: labels %s: %s window %d: want [start, end]", path, key, i)
			}
			s, err1 := ParseTime(w[0])
			e, err2 := ParseTime(w[1])
			if err := firstErr(err1, err2); err != nil {
				return nil, fmt.Errorf("nab: labels %s: %s window %d: %w", path, key, i, err)
			}
			if e.Before(s) {
				return nil, fmt.Errorf("nab: labels %s: %s window %d ends before it starts", path, key, i)
			}
			out[key] = append(out[key], Window{Start: s, End: e})
		}
		if out[key] == nil {
			out[key] = []Window{}
		}
		slices.SortFunc(out[key], func(a, b Window) int { return a.Start.Compare(b.Start) })
	}
	return out, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// File is one scored series: the detector's anomaly score for every row.
type File struct {
	Key    string // "<category>/<file>.csv"
	Times  []time.Time
	Scores []float64
}

// Result is the corpus score of one profile at its best threshold.
type Result struct {
	Profile   string  `json:"profile"`
	Threshold float64 `json:"threshold"` // rows scoring ≥ this are detections; +Inf: none
	Score     float64 `json:"score"`     // 100·(raw − null)/(perfect − null)
	Raw       float64 `json:"raw"`
	Null      float64 `json:"null"`
	Perfect   float64 `json:"perfect"`
	TP        int     `json:"tp"` // windows detected
	FN        int     `json:"fn"` // windows missed
	FP        int     `json:"fp"` // detection rows outside every window
}

// Probation returns the number of leading rows NAB does not score: min(⌊0.15·n⌋, 750).
func Probation(n int) int { return min(int(math.Floor(0.15*float64(n))), 750) }

// sigmoid is NAB's scaled sigmoid S(x) = 2/(1+e^(5x)) − 1, and −1 for x > 3.
func sigmoid(x float64) float64 {
	if x > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*x)) - 1
}

// point is one scored row: its anomaly score, its unweighted value (S of its position) and the
// window it lies in (-1 outside every window).
type point struct {
	score  float64
	value  float64
	window int
}

// windowRows converts the windows of one file to row indices [L, R]; a window holding no row
// gets L = R = -1 (it can never be detected).
func windowRows(times []time.Time, ws []Window) [][2]int {
	out := make([][2]int, len(ws))
	for k, w := range ws {
		l := sort.Search(len(times), func(i int) bool { return !times[i].Before(w.Start) })
		r := sort.Search(len(times), func(i int) bool { return times[i].After(w.End) }) - 1
		if l > r {
			l, r = -1, -1
		}
		out[k] = [2]int{l, r}
	}
	return out
}

// filePoints returns the scored rows of one file. Inside window k (rows [L, R], width
// w = R−L+1) a row i is worth S(−(R−i+1)/w)/S(−1) in units of A_TP; outside, it is worth
// S(|i−R'|/(w'−1)) in units of A_FP (negative), with R', w' of the latest window that ended
// before i, and −1 before the first window. Rows in the probationary period are left out.
// base numbers the file's windows corpus-wide.
func filePoints(f File, ws []Window, base int) []point {
	rows := windowRows(f.Times, ws)
	prob := Probation(len(f.Times))
	pts := make([]point, 0, len(f.Times)-prob)
	next, prevR, prevW := 0, -1, 0
	for i := range f.Times {
		for next < len(rows) && (rows[next][0] < 0 || rows[next][1] < i) { // passed or empty
			if rows[next][0] >= 0 {
				prevR, prevW = rows[next][1], rows[next][1]-rows[next][0]+1
			}
			next++
		}
		p := point{score: f.Scores[i], window: -1}
		if next < len(rows) && i >= rows[next][0] && i <= rows[next][1] {
			l, r := rows[next][0], rows[next][1]
			w := float64(r - l + 1)
			p.value = sigmoid(-float64(r-i+1)/w) / sigmoid(-1)
			p.window = base + next
		} else if prevR < 0 {
			p.value = -1
		} else {
			den := 1.0
			if prevW > 1 {
				den = float64(prevW - 1)
			}
			p.value = sigmoid(math.Abs(float64(i-prevR)) / den)
		}
		if i >= prob {
			pts = append(pts, p)
		}
	}
	return pts
}

// fileWindows returns the windows of f and checks that f has as many scores as timestamps.
func fileWindows(f File, labels map[string][]Window) ([]Window, error) {
	ws, ok := labels[f.Key]
	if !ok {
		return nil, fmt.Errorf("nab: %s has no entry in the labels", f.Key)
	}
	if len(f.Times) != len(f.Scores) {
		return nil, fmt.Errorf("nab: %s: %d timestamps but %d scores", f.Key, len(f.Times), len(f.Scores))
	}
	return ws, nil
}

// Score scores a corpus under each profile: for every profile the threshold is chosen among the
// distinct scores so that the corpus total is largest (ties: the higher threshold), then the total
// is normalised with the null detector (−A_FN per window) and the perfect one (+A_TP per window).
// Every file with labels must be in files and every file must have labels.
func Score(files []File, labels map[string][]Window, profiles []Profile) ([]Result, error) {
	seen := map[string]bool{}
	var pts []point
	nWin := 0
	for _, f := range files {
		ws, err := fileWindows(f, labels)
		if err != nil {
			return nil, err
		}
		seen[f.Key] = true
		pts = append(pts, filePoints(f, ws, nWin)...)
		nWin += len(ws)
	}
	for key := range labels {
		if !seen[key] {
			return nil, fmt.Errorf("nab: no results for %s", key)
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	out := make([]Result, len(profiles))
	for k, p := range profiles {
		out[k] = sweep(pts, nWin, p)
	}
	return out, nil
}

// sweep lowers the threshold through the distinct scores of pts (sorted by score, descending)
// and keeps the best total. In a window only the best (earliest) detection counts.
func sweep(pts []point, nWin int, p Profile) Result {
	best := make([]float64, nWin) // best TP value per window, 0 = undetected
	detected, fps := 0, 0
	tpSum, fpSum := 0.0, 0.0
	null := -p.FN * float64(nWin)
	res := Result{Profile: p.Name, Threshold: math.Inf(1), Raw: null, Null: null,
		Perfect: p.TP * float64(nWin), FN: nWin}
	for i := 0; i < len(pts); {
		j := i
		for ; j < len(pts) && pts[j].score == pts[i].score; j++ {
			q := pts[j]
			if q.window < 0 {
				fpSum += p.FP * q.value
				fps++
				continue
			}
			if best[q.window] == 0 {
				detected++
			}
			if v := p.TP * q.value; v > best[q.window] {
				tpSum += v - best[q.window]
				best[q.window] = v
			}
		}
		if total := tpSum + fpSum - p.FN*float64(nWin-detected); total > res.Raw {
			res.Raw, res.Threshold = total, pts[i].score
			res.TP, res.FN, res.FP = detected, nWin-detected, fps
		}
		i = j
	}
	if res.Perfect != res.Null {
		res.Score = 100 * (res.Raw - res.Null) / (res.Perfect - res.Null)
	}
	return res
}
