package influxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Row is one series of an InfluxQL result: measurement name, group-by tags,
// column names and rows of values. Time is in nanoseconds since the epoch;
// numbers are json.Number so integers and nanosecond times stay exact.
type Row struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Index of the named column, or -1.
func (r Row) Index(column string) int {
	for i, c := range r.Columns {
		if c == column {
			return i
		}
	}
	return -1
}

// Value of column in row i, or nil when there is no such column or value.
func (r Row) Value(i int, column string) any {
	c := r.Index(column)
	if c < 0 || i < 0 || i >= len(r.Values) || c >= len(r.Values[i]) {
		return nil
	}
	return r.Values[i][c]
}

// Float of column in row i; ok is false when it is absent or not a number.
func (r Row) Float(i int, column string) (v float64, ok bool) {
	n, isNum := r.Value(i, column).(json.Number)
	if !isNum {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// Int of column in row i; ok is false when it is absent or not an integer.
func (r Row) Int(i int, column string) (v int64, ok bool) {
	n, isNum := r.Value(i, column).(json.Number)
	if !isNum {
		return 0, false
	}
	x, err := n.Int64()
	return x, err == nil
}

// String of column in row i, or "" when it is absent or not a string.
func (r Row) String(i int, column string) string {
	s, _ := r.Value(i, column).(string)
	return s
}

type queryResponse struct {
	Results []struct {
		Series []Row  `json:"series"`
		Error  string `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// QueryContext runs InfluxQL against the database over HTTP /query (epoch
// nanoseconds) and returns the series of every statement, in order.
func (s *Server) QueryContext(ctx context.Context, influxql string) ([]Row, error) {
	form := url.Values{"db": {s.opts.Database}, "q": {influxql}, "epoch": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxql %q: %w", influxql, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("influxql %q: %w", influxql, err)
	}
	var qr queryResponse
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&qr); err != nil {
		return nil, fmt.Errorf("influxql %q: %s: %.200s", influxql, resp.Status, body)
	}
	if qr.Error != "" {
		return nil, fmt.Errorf("influxql %q: %s", influxql, qr.Error)
	}
	var rows []Row
	for _, r := range qr.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxql %q: %s", influxql, r.Error)
		}
		rows = append(rows, r.Series...)
	}
	return rows, nil
}

// CountContext returns the number of points of measurement matching where
// ("" for all): the largest count(*) over its fields, which is exact when
// some field is present in every point (every Vigil event has "id").
func (s *Server) CountContext(ctx context.Context, measurement, where string) (int, error) {
	q := "SELECT count(*) FROM " + quoteIdent(measurement)
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := s.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	most := int64(0)
	for _, r := range rows {
		for i, c := range r.Columns {
			if !strings.HasPrefix(c, "count_") {
				continue
			}
			for _, vals := range r.Values {
				if n, ok := vals[i].(json.Number); ok {
					if x, err := n.Int64(); err == nil && x > most {
						most = x
					}
				}
			}
		}
	}
	return int(most), nil
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
