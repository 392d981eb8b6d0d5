package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/wire"
)

// HTTPProbe requests url and checks the answer (see probesCollector).
type HTTPProbe struct {
	Name string `yaml:"name"`
	// URL, http or https. ${ENV} is expanded.
	URL config.Expand `yaml:"url"`
	// Method. Default GET.
	Method string `yaml:"method"`
	// Headers sent with the request; ${ENV} is expanded in the values
	// (e.g. Authorization: Bearer ${API_TOKEN}).
	Headers map[string]config.Expand `yaml:"headers"`
	// ExpectStatus: the status codes that count as up. Default 200–399.
	ExpectStatus []int `yaml:"expect_status"`
	// BodyRegex: the body (its first 1 MiB) must match it to count as up.
	BodyRegex string `yaml:"body_regex"`
	// CAFile: PEM certificates to verify the server with, instead of the
	// system's.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any server certificate (tls_days_left is
	// still reported).
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"`
	Interval           time.Duration `yaml:"interval"`
	Timeout            time.Duration `yaml:"timeout"`
}

// maxProbeBody is how much of a body an HTTP probe reads.
const maxProbeBody = 1 << 20

// httpProbe is a checked HTTPProbe.
type httpProbe struct {
	url, method string
	header      http.Header
	expect      []int
	body        *regexp.Regexp
	client      *http.Client
}

// newHTTPProbe validates h (errors positioned below path) and returns its
// run function.
func newHTTPProbe(path string, h HTTPProbe) (func(context.Context) ([]wire.Field, error), error) {
	var errs []error
	p := &httpProbe{url: string(h.URL), method: h.Method, header: http.Header{}, expect: h.ExpectStatus}
	if p.method == "" {
		p.method = http.MethodGet
	}
	if strings.ContainsAny(p.method, " \t\r\n") {
		errs = append(errs, optErr(path+".method", "bad method %q", h.Method))
	}
	u, err := url.Parse(p.url)
	switch {
	case err != nil:
		errs = append(errs, optErr(path+".url", "bad URL: %v", errors.Unwrap(err)))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		errs = append(errs, optErr(path+".url", "URL %q: want http:// or https:// with a host", p.url))
	}
	for _, code := range h.ExpectStatus {
		if code < 100 || code > 599 {
			errs = append(errs, optErr(path+".expect_status", "status %d is not an HTTP status", code))
		}
	}
	if h.BodyRegex != "" {
		if p.body, err = regexp.Compile(h.BodyRegex); err != nil {
			errs = append(errs, optErr(path+".body_regex", "bad regex: %v", err))
		}
	}
	for k, v := range h.Headers {
		p.header.Set(k, string(v))
	}
	tc := &tls.Config{InsecureSkipVerify: h.InsecureSkipVerify} //nolint:gosec // the user's explicit choice
	if h.CAFile != "" {
		pem, err := os.ReadFile(h.CAFile)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			errs = append(errs, optErr(path+".ca_file", "%v", err))
		case !pool.AppendCertsFromPEM(pem):
			errs = append(errs, optErr(path+".ca_file", "%s: no PEM certificate", h.CAFile))
		}
		tc.RootCAs = pool
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.client = &http.Client{
		Transport: &http.Transport{
			Proxy:             http.ProxyFromEnvironment,
			TLSClientConfig:   tc,
			DisableKeepAlives: true,
		},
		// Redirects are followed (at most 10); the final answer counts.
	}
	return p.run, nil
}

// run makes one request.
func (p *httpProbe) run(ctx context.Context) ([]wire.Field, error) {
	req, err := http.NewRequestWithContext(ctx, p.method, p.url, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header = p.header.Clone()
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return []wire.Field{wire.I("up", 0), wire.F("latency_ms", ms(time.Since(start)))}, nil
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	took := time.Since(start)
	up := readErr == nil && p.statusOK(resp.StatusCode)
	fields := []wire.Field{
		wire.I("status_code", int64(resp.StatusCode)),
		wire.F("latency_ms", ms(took)),
	}
	if p.body != nil {
		match := readErr == nil && p.body.Match(body)
		up = up && match
		fields = append(fields, wire.I("body_match", b01(match)))
	}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		left := resp.TLS.PeerCertificates[0].NotAfter.Sub(start)
		fields = append(fields, wire.F("tls_days_left", left.Hours()/24))
	}
	return append(fields, wire.I("up", b01(up))), nil
}

func (p *httpProbe) statusOK(code int) bool {
	if len(p.expect) == 0 {
		return code >= 200 && code < 400
	}
	for _, c := range p.expect {
		if c == code {
			return true
		}
	}
	return false
}
