package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// webhookAction POSTs the intent as JSON to the URL of the rule file's
// params.url (http or https, written in the rule file, never templated),
// under the action's timeout (default 1m). A 2xx answer is success; any
// other status, or no answer, is a failure; the first 4 KiB of the body
// are kept as output. The receiver should de-duplicate on "key" (also
// sent as the Idempotency-Key header).
//
// Body: {"key","rule","group","subject","severity","fired_at",
// "predicted_failure" (omitted when none),"values","labels"}.
//
// Rule file: action: {kind: webhook, params: {url: "https://hooks.example/vigil"}}
type webhookAction struct {
	url     string
	timeout time.Duration
	client  *http.Client
}

func validateWebhookParams(p map[string]string) error {
	u, err := url.Parse(p["url"])
	if p["url"] == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook needs params.url, an http or https URL (got %q)", p["url"])
	}
	for k := range p {
		if k != "url" && k != "retries" {
			return fmt.Errorf("webhook has no parameter %q (known: url, retries)", k)
		}
	}
	return validateRetriesParam(p)
}

func validateRetriesParam(p map[string]string) error {
	if v, ok := p["retries"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > maxRetries {
			return fmt.Errorf("params.retries %q is not a whole number in [0, %d]", v, maxRetries)
		}
	}
	return nil
}

func newWebhookAction(spec *rules.Action, cfg ActionsConfig) (Action, error) {
	if err := validateWebhookParams(spec.Params); err != nil {
		return nil, fmt.Errorf("action %q: %w", spec.Name, err)
	}
	t := spec.Timeout
	if t <= 0 {
		t = time.Minute
	}
	return &webhookAction{url: spec.Params["url"], timeout: t, client: &http.Client{}}, nil
}

func (a *webhookAction) Kind() string { return "webhook" }

type webhookBody struct {
	Key              string             `json:"key"`
	Rule             string             `json:"rule"`
	Group            string             `json:"group"`
	Subject          string             `json:"subject"`
	Severity         string             `json:"severity"`
	FiredAt          time.Time          `json:"fired_at"`
	PredictedFailure *time.Time         `json:"predicted_failure,omitempty"`
	Values           map[string]float64 `json:"values"`
	Labels           map[string]string  `json:"labels,omitempty"`
}

func (a *webhookAction) Execute(ctx context.Context, in rules.Intent) (Outcome, error) {
	body := webhookBody{Key: in.Key, Subject: in.Subject, FiredAt: in.At, Values: finiteValues(in.Values), Labels: in.Labels}
	if r := in.Rule; r != nil {
		body.Rule, body.Group, body.Severity = r.Name, r.Group, r.Severity
	}
	if !in.PredictedFailure.IsZero() {
		body.PredictedFailure = &in.PredictedFailure
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Outcome{Status: OutcomeFailure}, fmt.Errorf("webhook: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(b))
	if err != nil {
		return Outcome{Status: OutcomeFailure}, fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", in.Key)
	resp, err := a.client.Do(req)
	if err != nil {
		o := Outcome{Status: OutcomeFailure}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			o.Status = OutcomeTimeout
		}
		return o, fmt.Errorf("webhook %s: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	o := Outcome{Status: OutcomeSuccess, ExitCode: resp.StatusCode, Output: string(out)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		o.Status = OutcomeFailure
		return o, fmt.Errorf("webhook %s: status %s", req.URL.Redacted(), resp.Status)
	}
	return o, nil
}

func init() {
	registerAction("webhook", newWebhookAction)
	rules.RegisterActionKind("webhook", validateWebhookParams)
}

var _ Action = (*webhookAction)(nil)
