// Package dashboards_test checks the Grafana dashboards and provisioning
// files in this directory. Grafana cannot run here, so every panel query
// and template-variable query is run, the way Grafana's InfluxDB (Flux)
// datasource would run it, against a real InfluxDB 1.8.10 holding a
// history that Vigil itself wrote (see runScenario).
package dashboards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"gopkg.in/yaml.v3"

	"github.com/vigil-sre/vigil/internal/influxtest"
)

// dashboard is the part of a Grafana dashboard JSON the tests read.
type dashboard struct {
	file       string
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int     `json:"id"`
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource *dsRef  `json:"datasource"`
	Targets    []query `json:"targets"`
	Panels     []panel `json:"panels"` // a collapsed row's panels
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type query struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	Query      string `json:"query"`
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Datasource *dsRef `json:"datasource"`
	Query      string `json:"query"`
	Multi      bool   `json:"multi"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// datasource is the provisioned Grafana datasource.
type datasource struct {
	Name      string `yaml:"name"`
	UID       string `yaml:"uid"`
	Type      string `yaml:"type"`
	Access    string `yaml:"access"`
	URL       string `yaml:"url"`
	IsDefault bool   `yaml:"isDefault"`
	Editable  bool   `yaml:"editable"`
	JSONData  struct {
		Version       string `yaml:"version"`
		Organization  string `yaml:"organization"`
		DefaultBucket string `yaml:"defaultBucket"`
		TimeInterval  string `yaml:"timeInterval"`
	} `yaml:"jsonData"`
	SecureJSONData struct {
		Token string `yaml:"token"`
	} `yaml:"secureJsonData"`
}

func loadDatasource(t *testing.T) datasource {
	t.Helper()
	var f struct {
		APIVersion  int          `yaml:"apiVersion"`
		Datasources []datasource `yaml:"datasources"`
	}
	readYAML(t, filepath.Join("provisioning", "datasources", "vigil-influxdb.yaml"), &f)
	if f.APIVersion != 1 || len(f.Datasources) != 1 {
		t.Fatalf("datasource provisioning: apiVersion %d, %d datasources; want 1 and 1", f.APIVersion, len(f.Datasources))
	}
	ds := f.Datasources[0]
	// Grafana's Flux mode against InfluxDB 1.8: a token (user:password),
	// a non-empty organisation (ignored), bucket database/retention.
	if ds.Type != "influxdb" || ds.Access != "proxy" || ds.UID == "" || ds.JSONData.Version != "Flux" || ds.JSONData.Organization == "" ||
		ds.SecureJSONData.Token == "" || !strings.Contains(ds.JSONData.DefaultBucket, "/") {
		t.Fatalf("datasource %+v: want type influxdb, a uid, version Flux, an organization, a token and a db/retention bucket", ds)
	}
	return ds
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("dashboards: %d JSON files, want at least 4", len(files))
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = f
		out = append(out, d)
	}
	return out
}

// allPanels lists the panels of d, those inside rows included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Grafana's template-variable references: $name, ${name}, ${name:format}.
var varRef = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)(?::([A-Za-z0-9_]+))?\}|([A-Za-z0-9_]+))`)

// usedVars returns the variable names q references.
func usedVars(q string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(q, -1) {
		name := m[1] + m[3]
		if !strings.HasPrefix(name, "__") { // Grafana's own ($__interval, ...)
			out = append(out, name)
		}
	}
	return out
}

// TestDashboardStructure: every dashboard has a unique uid and title,
// unique panel ids, panels that use only the provisioned datasource, a
// query in every target, and defines every template variable it uses
// (and uses every one it defines).
func TestDashboardStructure(t *testing.T) {
	ds := loadDatasource(t)
	checkStructure(t, loadDashboards(t), ds)
}

func checkStructure(t *testing.T, dashes []dashboard, ds datasource) {
	t.Helper()
	uids, titles := map[string]string{}, map[string]string{}
	for _, d := range dashes {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q, title %q: want both", d.file, d.UID, d.Title)
		}
		if prev, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q already used by %s", d.file, d.UID, prev)
		}
		if prev, dup := titles[d.Title]; dup {
			t.Errorf("%s: title %q already used by %s", d.file, d.Title, prev)
		}
		uids[d.UID], titles[d.Title] = d.file, d.file
		defined := map[string]bool{}
		for _, v := range d.Templating.List {
			if v.Name == "" || defined[v.Name] {
				t.Errorf("%s: variable %q: empty or defined twice", d.file, v.Name)
			}
			defined[v.Name] = true
			if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != ds.UID || strings.TrimSpace(v.Query) == "") {
				t.Errorf("%s: variable %q: want a query on datasource %q, got %+v", d.file, v.Name, ds.UID, v)
			}
		}
		used := map[string]bool{}
		ids := map[int]string{}
		queries := 0
		for _, p := range d.allPanels() {
			where := fmt.Sprintf("%s: panel %d %q", d.file, p.ID, p.Title)
			if p.ID <= 0 {
				t.Errorf("%s: no id", where)
			} else if prev, dup := ids[p.ID]; dup {
				t.Errorf("%s: id %d already used by %q", where, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if p.Title == "" || p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: want a title and a gridPos within 24 columns", where)
			}
			if len(p.Targets) == 0 && p.Type != "text" && p.Type != "row" {
				t.Errorf("%s: a %s panel without targets", where, p.Type)
			}
			if len(p.Targets) > 0 && (p.Datasource == nil || p.Datasource.UID != ds.UID || p.Datasource.Type != ds.Type) {
				t.Errorf("%s: datasource %+v, want {type %s uid %s}", where, p.Datasource, ds.Type, ds.UID)
			}
			for _, q := range p.Targets {
				queries++
				if q.Datasource != nil && q.Datasource.UID != ds.UID {
					t.Errorf("%s: target %s: datasource %q, want %q", where, q.RefID, q.Datasource.UID, ds.UID)
				}
				if strings.TrimSpace(q.Query) == "" || q.RefID == "" {
					t.Errorf("%s: target %q: empty query or refId", where, q.RefID)
				}
				for _, name := range usedVars(q.Query) {
					used[name] = true
					if !defined[name] {
						t.Errorf("%s: uses variable $%s, which the dashboard does not define", where, name)
					}
				}
			}
		}
		if queries == 0 {
			t.Errorf("%s: no queries", d.file)
		}
		for _, v := range d.Templating.List {
			for _, name := range usedVars(v.Query) {
				if !defined[name] {
					t.Errorf("%s: variable %q uses $%s, which is not defined", d.file, v.Name, name)
				}
			}
			if !used[v.Name] {
				t.Errorf("%s: variable %q is defined but no panel uses it", d.file, v.Name)
			}
		}
	}
}

// grafanaFlux replaces what Grafana's InfluxDB datasource replaces in a
// Flux query before sending it (v.timeRangeStart and v.timeRangeStop as
// RFC 3339 times, v.windowPeriod as a Go duration, v.defaultBucket and
// v.organization as strings, matched like Grafana does: any
// identifier.identifier with these names).
var fluxVarRef = regexp.MustCompile(`([a-zA-Z]+)\.([a-zA-Z]+)`)

type timeRange struct {
	from, to time.Time
	window   time.Duration
}

func grafanaFlux(q string, tr timeRange, ds datasource) string {
	return fluxVarRef.ReplaceAllStringFunc(q, func(m string) string {
		switch m[strings.IndexByte(m, '.')+1:] {
		case "timeRangeStart":
			return tr.from.UTC().Format(time.RFC3339Nano)
		case "timeRangeStop":
			return tr.to.UTC().Format(time.RFC3339Nano)
		case "windowPeriod":
			return tr.window.String()
		case "defaultBucket", "bucket":
			return `"` + ds.JSONData.DefaultBucket + `"`
		case "organization":
			return `"` + ds.JSONData.Organization + `"`
		}
		return m
	})
}

// templateVars replaces the dashboard's variables as Grafana's frontend
// does: values[name] is the selection (nil or empty: All, i.e. the
// variable's allValue); the regex format joins escaped values as (a|b).
func templateVars(q string, vars []variable, values map[string][]string) string {
	byName := map[string]variable{}
	for _, v := range vars {
		byName[v.Name] = v
	}
	return varRef.ReplaceAllStringFunc(q, func(m string) string {
		sm := varRef.FindStringSubmatch(m)
		name, format := sm[1]+sm[3], sm[2]
		v, ok := byName[name]
		if !ok {
			return m
		}
		vals := values[name]
		if len(vals) == 0 {
			return v.AllValue
		}
		if format == "regex" {
			esc := make([]string, len(vals))
			for i, s := range vals {
				esc[i] = regexp.QuoteMeta(s)
			}
			if len(esc) == 1 {
				return esc[0]
			}
			return "(" + strings.Join(esc, "|") + ")"
		}
		return strings.Join(vals, ",")
	})
}

// fluxRunner runs interpolated Flux queries with influxdb-client-go.
type fluxRunner struct {
	client influxdb2.Client
	ds     datasource
	tr     timeRange
}

// result is what a query returned.
type result struct {
	rows   int      // records, over every table
	values []string // their _value column as text
}

// run executes q.
func (r *fluxRunner) run(q string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out result
	res, err := r.client.QueryAPI(r.ds.JSONData.Organization).Query(ctx, q)
	if err != nil {
		return out, err
	}
	defer res.Close()
	for res.Next() {
		out.rows++
		if v := res.Record().Value(); v != nil {
			out.values = append(out.values, fmt.Sprint(v))
		}
	}
	return out, res.Err()
}

// TestDashboardQueries runs every template-variable query and every
// panel query of every dashboard against InfluxDB holding a history Vigil
// wrote, with the variables at All and at each value their query offers.
// Each must succeed; with All each must return data, and with a single
// value at least one value of each variable must.
func TestDashboardQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts InfluxDB, NATS, two controllers and an agent")
	}
	ds := loadDatasource(t)
	dashes := loadDashboards(t)
	influx := influxtest.Start(t)
	if influx.Bucket() != ds.JSONData.DefaultBucket {
		t.Fatalf("test server bucket %q, datasource defaultBucket %q: want the same", influx.Bucket(), ds.JSONData.DefaultBucket)
	}
	from := time.Now().Add(-time.Minute)
	runScenario(t, influx)
	window, err := time.ParseDuration(ds.JSONData.TimeInterval)
	if err != nil {
		t.Fatalf("datasource timeInterval: %v", err)
	}
	client := influxdb2.NewClient(influx.URL(), ds.SecureJSONData.Token)
	defer client.Close()
	r := &fluxRunner{client: client, ds: ds, tr: timeRange{from: from, to: time.Now().Add(time.Minute), window: window}}
	for _, d := range dashes {
		t.Run(d.file, func(t *testing.T) { checkQueries(t, r, d) })
	}
}

// checkQueries runs d's variable queries (each must offer the scenario's
// value where it has one), then every panel query with all variables at
// All, then with each variable at each single value it offers.
func checkQueries(t *testing.T, r *fluxRunner, d dashboard) {
	offered := map[string][]string{}
	for _, v := range d.Templating.List {
		q := grafanaFlux(templateVars(v.Query, d.Templating.List, nil), r.tr, r.ds)
		res, err := r.run(q)
		vals := res.values
		if err != nil {
			t.Errorf("%s: variable %q: %v\n%s", d.Title, v.Name, err, q)
			continue
		}
		sort.Strings(vals)
		vals = slices.Compact(vals)
		want := map[string]string{"host": simHost, "series": simSeries}[v.Name]
		if len(vals) == 0 || want != "" && !slices.Contains(vals, want) {
			t.Errorf("%s: variable %q offers %q, want %q among them", d.Title, v.Name, vals, want)
		}
		offered[v.Name] = vals
	}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			where := fmt.Sprintf("%s (%s): panel %q, query %s", d.Title, d.file, p.Title, tg.RefID)
			q := grafanaFlux(templateVars(tg.Query, d.Templating.List, nil), r.tr, r.ds)
			res, err := r.run(q)
			if err != nil || res.rows == 0 {
				t.Errorf("%s with all variables at All: %d rows, err %v\n%s", where, res.rows, err, q)
			}
			for _, name := range slices.Compact(slices.Sorted(slices.Values(usedVars(tg.Query)))) {
				hits := 0
				for _, val := range offered[name] {
					q := grafanaFlux(templateVars(tg.Query, d.Templating.List, map[string][]string{name: {val}}), r.tr, r.ds)
					res, err := r.run(q)
					if err != nil {
						t.Errorf("%s with $%s = %q: %v\n%s", where, name, val, err, q)
					}
					if res.rows > 0 {
						hits++
					}
				}
				if hits == 0 {
					t.Errorf("%s: no data for any single value of $%s (%q)", where, name, offered[name])
				}
			}
		}
	}
}
