package nab

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)

// mkFile returns a file of n rows 5 minutes apart with the given non-zero scores.
func mkFile(key string, n int, scores map[int]float64) File {
	f := File{Key: key, Times: make([]time.Time, n), Scores: make([]float64, n)}
	for i := range n {
		f.Times[i] = t0.Add(time.Duration(i) * 5 * time.Minute)
		f.Scores[i] = scores[i]
	}
	return f
}

// win returns the window covering rows [l, r] of a mkFile file.
func win(l, r int) Window {
	return Window{Start: t0.Add(time.Duration(l) * 5 * time.Minute), End: t0.Add(time.Duration(r) * 5 * time.Minute)}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

// Hand-derived case. 20 rows: probation = min(⌊0.15·20⌋, 750) = 3. One window, rows [10, 13],
// w = 4. Detections: row 11 scores 0.9, row 5 scores 0.8 (before the window), row 15 scores 0.7
// (after it); every other row scores 0.
//
//	S(x) = 2/(1+e^(5x)) − 1;  S(−1) = 2/(1+e^−5) − 1 = 0.986614
//	row 11 in the window: position −(13−11+1)/4 = −0.75; S(−0.75) = 2/(1+e^−3.75) − 1 = 0.954045
//	  → TP worth 0.954045/0.986614 = 0.966989
//	row 5, no earlier window: −1 · A_FP
//	row 15: |15−13|/(4−1) = 0.6667; S(0.6667) = 2/(1+e^3.3333) − 1 = −0.931109 → −0.931109·A_FP
//
// standard (1, 0.11, 1): threshold 0.9 → 0.966989; 0.8 → 0.966989 − 0.11 = 0.856989;
// 0.7 → 0.856989 − 0.102422 = 0.754567; 0 → every row detects: many FPs, far below.
// Best: 0.9, raw 0.966989, null −1, perfect 1 → 100·1.966989/2 = 98.3494.
// reward_low_FN_rate (1, 0.11, 2): same threshold, null −2 → 100·2.966989/3 = 98.8996.
// reward_low_FP_rate (1, 0.22, 1): same threshold and score as standard, 98.3494.
func TestScoreHandMade(t *testing.T) {
	f := mkFile("c/a.csv", 20, map[int]float64{11: 0.9, 5: 0.8, 15: 0.7})
	res, err := Score([]File{f}, map[string][]Window{"c/a.csv": {win(10, 13)}}, Profiles)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ score, raw float64 }{{98.3494, 0.966989}, {98.3494, 0.966989}, {98.8996, 0.966989}}
	for i, r := range res {
		if !near(r.Score, want[i].score) || !near(r.Raw, want[i].raw) || r.Threshold != 0.9 || r.TP != 1 || r.FP != 0 {
			t.Errorf("%s: %+v, want score %v raw %v at threshold 0.9", r.Profile, r, want[i].score, want[i].raw)
		}
	}
}

// Second case: only the earliest detection in a window counts, a missed window costs A_FN, a
// detection in the probationary period is ignored, a file with no window charges −A_FP per FP.
//
// File b: 40 rows, probation ⌊6⌋ = 6. Windows [10,19] (w 10) and [30,34] (w 5). Scores: row 2 = 1
// (probationary: ignored), rows 12 and 15 = 0.5 (in window 1), row 21 = 0.5 (after window 1).
// File z: 20 rows, no window, row 10 = 0.5.
//
//	row 12: −(19−12+1)/10 = −0.8; S(−0.8) = 2/(1+e^−4) − 1 = 0.964028 → 0.977105
//	row 15 is in the same window: it does not add.
//	row 21: |21−19|/(10−1) = 0.2222; S(0.2222) = 2/(1+e^1.1111) − 1 = −0.504672 → ·0.11 = −0.055514
//	window 2 missed: −1. File z row 10: −0.11.
//
// standard at threshold 0.5: 0.977105 − 0.055514 − 1 − 0.11 = −0.188409; at 1 (row 2 only,
// probationary): null −2. Best 0.5: score 100·(−0.188409 + 2)/(2 + 2) = 45.2898.
func TestScoreEarliestMissedProbation(t *testing.T) {
	b := mkFile("c/b.csv", 40, map[int]float64{2: 1, 12: 0.5, 15: 0.5, 21: 0.5})
	z := mkFile("d/z.csv", 20, map[int]float64{10: 0.5})
	labels := map[string][]Window{"c/b.csv": {win(10, 19), win(30, 34)}, "d/z.csv": {}}
	res, err := Score([]File{b, z}, labels, Profiles[:1])
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if !near(r.Raw, -0.188409) || !near(r.Score, 45.2898) || r.Threshold != 0.5 || r.TP != 1 || r.FN != 1 || r.FP != 2 {
		t.Errorf("got %+v, want raw −0.188409, score 45.2898, TP 1, FN 1, FP 2", r)
	}
}

// A detector that never fires scores 0; one that fires exactly at every window start scores 100.
func TestScoreNullAndPerfect(t *testing.T) {
	labels := map[string][]Window{"c/a.csv": {win(50, 59), win(80, 89)}}
	null := mkFile("c/a.csv", 100, nil)
	perfect := mkFile("c/a.csv", 100, map[int]float64{50: 1, 80: 1})
	for _, c := range []struct {
		f    File
		want float64
	}{{null, 0}, {perfect, 100}} {
		res, err := Score([]File{c.f}, labels, Profiles)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if !near(r.Score, c.want) {
				t.Errorf("%s: %v, want %v", r.Profile, r.Score, c.want)
			}
		}
	}
}

func TestScoreMismatch(t *testing.T) {
	f := mkFile("c/a.csv", 10, nil)
	if _, err := Score([]File{f}, map[string][]Window{"c/other.csv": {}}, Profiles); err == nil {
		t.Error("a file without labels was scored")
	}
	if _, err := Score([]File{f}, map[string][]Window{"c/a.csv": {}, "c/b.csv": {}}, Profiles); err == nil {
		t.Error("a labelled file without results was scored")
	}
}

func TestProbation(t *testing.T) {
	for n, want := range map[int]int{0: 0, 20: 3, 1000: 150, 4032: 604, 5000: 750, 22695: 750} {
		if got := Probation(n); got != want {
			t.Errorf("Probation(%d) = %d, want %d", n, got, want)
		}
	}
}
