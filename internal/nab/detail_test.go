package nab

import "testing"

// TestDetailHandMade breaks the second hand-made case of score_test.go down by file at threshold
// 0.5 (standard): file b detects window 1 at row 12 (worth 0.977105, position (12−10)/(19−10)),
// misses window 2 and pays one FP row (row 21, −0.055514); file z pays one full FP (−0.11). The
// files' raw values must add up to the corpus raw score, −0.188409.
func TestDetailHandMade(t *testing.T) {
	b := mkFile("c/b.csv", 40, map[int]float64{2: 1, 12: 0.5, 15: 0.5, 21: 0.5})
	z := mkFile("d/z.csv", 20, map[int]float64{10: 0.5})
	labels := map[string][]Window{"c/b.csv": {win(10, 19), win(30, 34)}, "d/z.csv": {}}
	ds, err := Detail([]File{b, z}, labels, Profiles[0], 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Fatalf("got %d files", len(ds))
	}
	db, dz := ds[0], ds[1]
	if db.Key != "c/b.csv" || db.Rows != 40 || db.Probation != 6 || db.FP != 1 || !near(db.FPCost, -0.055514) {
		t.Errorf("file b: %+v", db)
	}
	if len(db.Windows) != 2 {
		t.Fatalf("file b: %d windows", len(db.Windows))
	}
	if w := db.Windows[0]; w.Row != 12 || !near(w.Value, 0.977105) || !near(w.Position, 2.0/9) {
		t.Errorf("window 1: %+v, want row 12 worth 0.977105 at 0.2222", w)
	}
	if w := db.Windows[1]; w.Row != -1 || w.Value != 0 {
		t.Errorf("window 2: %+v, want missed", w)
	}
	if !near(db.Raw, 0.977105-1-0.055514) {
		t.Errorf("file b raw %v", db.Raw)
	}
	if dz.FP != 1 || !near(dz.FPCost, -0.11) || !near(dz.Raw, -0.11) || len(dz.Windows) != 0 {
		t.Errorf("file z: %+v", dz)
	}
	if sum := db.Raw + dz.Raw; !near(sum, -0.188409) {
		t.Errorf("sum of file raws %v, want the corpus raw −0.188409", sum)
	}
	// Above every score nothing is detected: each window is a miss, no FP.
	ds, err = Detail([]File{b, z}, labels, Profiles[2], 2)
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].FP != 0 || ds[0].Raw != -4 || ds[1].Raw != 0 {
		t.Errorf("threshold 2, low-FN: %+v %+v, want raw −4 and 0", ds[0], ds[1])
	}
	if _, err := Detail([]File{b}, map[string][]Window{}, Profiles[0], 0.5); err == nil {
		t.Error("a file without labels must be an error")
	}
}
