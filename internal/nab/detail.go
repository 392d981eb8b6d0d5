package nab

import (
	"math"
	"time"
)

// WindowDetail says how one labelled window fared at a given threshold.
type WindowDetail struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Row is the first detection row inside the window, -1 if the window was missed.
	Row int `json:"row"`
	// Position is where that row lies in the window: 0 at its first row, 1 at its last.
	Position float64 `json:"position"`
	// Value is the detection's worth in units of A_TP (1 at the first row, about 0 at the last).
	Value float64 `json:"value"`
}

// FileDetail is one file's share of a profile's score at a given threshold: which windows were
// detected, where, and how many false-positive rows it cost.
type FileDetail struct {
	Key       string         `json:"file"`
	Rows      int            `json:"rows"`
	Probation int            `json:"probation"`
	FP        int            `json:"fp"`      // detection rows outside every window
	FPCost    float64        `json:"fp_cost"` // their total cost, A_FP·S(...) summed (≤ 0)
	Raw       float64        `json:"raw"`     // TP values − A_FN per miss + FPCost
	Windows   []WindowDetail `json:"windows"`
}

// Detail breaks a profile's score down by file at threshold th (usually the Result.Threshold
// that Score chose): the same rows, windows and weights as Score, so the files' Raw values sum
// to the corpus raw score at that threshold.
func Detail(files []File, labels map[string][]Window, p Profile, th float64) ([]FileDetail, error) {
	out := make([]FileDetail, 0, len(files))
	for _, f := range files {
		ws, err := fileWindows(f, labels)
		if err != nil {
			return nil, err
		}
		prob := Probation(len(f.Times))
		d := FileDetail{Key: f.Key, Rows: len(f.Times), Probation: prob, Windows: make([]WindowDetail, len(ws))}
		rows := windowRows(f.Times, ws)
		for k, w := range ws {
			d.Windows[k] = WindowDetail{Start: w.Start, End: w.End, Row: -1}
		}
		for j, pt := range filePoints(f, ws, 0) {
			if pt.score < th {
				continue
			}
			if pt.window < 0 {
				d.FP++
				d.FPCost += p.FP * pt.value
				continue
			}
			wd := &d.Windows[pt.window]
			if wd.Row >= 0 {
				continue
			}
			i := prob + j
			l, r := rows[pt.window][0], rows[pt.window][1]
			wd.Row, wd.Value = i, p.TP*pt.value
			if r > l {
				wd.Position = float64(i-l) / float64(r-l)
			}
		}
		d.Raw = d.FPCost
		for _, wd := range d.Windows {
			if wd.Row < 0 {
				d.Raw -= p.FN
			} else {
				d.Raw += wd.Value
			}
		}
		if math.Abs(d.Raw) < 1e-12 {
			d.Raw = 0
		}
		out = append(out, d)
	}
	return out, nil
}
