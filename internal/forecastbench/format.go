package forecastbench

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// WriteText prints the report as a table, one row per scenario, then the failing hosts one by
// one (onset, actual and predicted crossing as offsets from the start, lead time), then the
// verdict against the goals.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, r.String())
	fmt.Fprintln(tw, "scenario\tlevel\tpredicted\tlead min\tlead median\tpredicted − actual\tflaps\tfalse alarms\tper host-week")
	for _, row := range r.Rows {
		if row.Failure {
			fmt.Fprintf(tw, "%s\t%g\t%d/%d\t%s\t%s\t%s\t%d\t%d\t%.2f\n", row.Scenario, row.Level, row.Predicted, row.Hosts,
				short(row.MinLead), short(row.MedianLead), signed(row.MedianError), row.Flaps, row.FalseAlarms, row.FalseAlarmRate())
		} else {
			fmt.Fprintf(tw, "%s\t%g\t-\t-\t-\t-\t-\t%d\t%.2f\n", row.Scenario, row.Level, row.FalseAlarms, row.FalseAlarmRate())
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "host\tonset\tcrossed\tpredicted (when held)\tlast predicted\tlead")
	for _, row := range r.Rows {
		if !row.Failure {
			continue
		}
		for _, h := range row.Results {
			pred, last := "missed", "-"
			if h.Predicted {
				pred = fmt.Sprintf("%s (%s)", offset(h.PredictedAt), signed(time.Duration(h.PredictedAt-h.Crossing)))
				last = fmt.Sprintf("%s (%s)", offset(h.LastPredAt), signed(time.Duration(h.LastPredAt-h.Crossing)))
			}
			fmt.Fprintf(tw, "%s#%d\t%s\t%s\t%s\t%s\t%s\n", row.Scenario, h.Seed, offset(h.Onset), offset(h.Crossing), pred, last, short(h.Lead()))
		}
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(tw, "\nshortest lead %s, %d false alarms (%.2f per host-week); goal every failure ≥ %s ahead, ≤ %g false alarm per host-week in every scenario: %s\n",
		short(time.Duration(r.MinLead)), r.FalseAlarms, r.FalseAlarmsHW, short(GoalLead), GoalFalseAlarmsHW, verdict)
	return tw.Flush()
}

// offset formats a Unix-ns time as "+1d02h03m" from Start.
func offset(t int64) string {
	if t == 0 {
		return "-"
	}
	return "+" + dhm(time.Duration(t-Start.UnixNano()))
}

// dhm formats d ≥ 0 as 1d02h03m (days only when needed).
func dhm(d time.Duration) string {
	m := int64(math.Round(d.Minutes()))
	if m >= 24*60 {
		return fmt.Sprintf("%dd%02dh%02dm", m/(24*60), m/60%24, m%60)
	}
	return fmt.Sprintf("%dh%02dm", m/60, m%60)
}

// short formats a non-negative duration to the minute.
func short(d time.Duration) string {
	if d <= 0 {
		return "0m"
	}
	return dhm(d)
}

// signed formats a duration to the minute with its sign.
func signed(d time.Duration) string {
	if d < 0 {
		return "−" + dhm(-d)
	}
	return "+" + dhm(d)
}
