package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/route"
	"github.com/vigil-sre/vigil/internal/wire"
)

// TrafficConfig is one traffic switch (config `traffic:`, a list): a
// small reverse proxy on Listen that forwards every request to the member
// of Service the route table (KV bucket VIGIL_ROUTES) names active, and
// follows the table as the controller fails the service over.
type TrafficConfig struct {
	// Listen address, e.g. 127.0.0.1:8080. Required.
	Listen string `yaml:"listen"`
	// Service whose route is followed. Required.
	Service string `yaml:"service"`
	// SwitchWait: a request that finds no active member (a failover is
	// under way) or whose member does not answer waits up to this long for
	// the route to change, then is retried once on the new member.
	// Default 2s.
	SwitchWait time.Duration `yaml:"switch_wait"`
	// MaxRetryBody: request bodies up to this size are kept so the request
	// can be retried; larger ones are not retried. Default 1 MiB.
	MaxRetryBody int64 `yaml:"max_retry_body"`
}

func (c *TrafficConfig) withDefaults() {
	if c.SwitchWait == 0 {
		c.SwitchWait = 2 * time.Second
	}
	if c.MaxRetryBody == 0 {
		c.MaxRetryBody = 1 << 20
	}
}

func (c *TrafficConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if err := route.ValidService(c.Service); err != nil {
		return err
	}
	if c.SwitchWait < 0 || c.MaxRetryBody < 0 {
		return errors.New("switch_wait and max_retry_body must not be negative")
	}
	return nil
}

// trafficTarget is the member requests go to. While the route drains
// the service (route.Entry.Weights), altWeight percent of requests go to
// the draining target alt instead.
type trafficTarget struct {
	member string
	url    *url.URL
	epoch  uint64

	alt       string
	altURL    *url.URL
	altWeight int // 0..100
}

// pick returns the URL of the member one request goes to.
func (t *trafficTarget) pick() *url.URL {
	if t.altURL != nil && (t.altWeight >= 100 || t.altWeight > 0 && rand.IntN(100) < t.altWeight) {
		return t.altURL
	}
	return t.url
}

// trafficSwitch is one traffic switch. The current target is swapped
// atomically; changed is closed (and replaced) on every route change so
// waiting requests wake up at once.
type trafficSwitch struct {
	cfg   TrafficConfig
	log   *slog.Logger
	proxy *httputil.ReverseProxy
	base  http.RoundTripper

	cur     atomic.Pointer[trafficTarget] // nil: no active member
	mu      sync.Mutex
	changed chan struct{}
	epoch   uint64 // newest epoch seen (mu)
	fenced  map[string]uint64

	requests, errors, switches, retries, stale atomic.Uint64
}

func newTrafficSwitch(cfg TrafficConfig, log *slog.Logger) *trafficSwitch {
	cfg.withDefaults()
	s := &trafficSwitch{cfg: cfg, log: log, changed: make(chan struct{}), fenced: map[string]uint64{}}
	s.base = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { pr.SetXForwarded() },
		Transport:    roundTripFunc(s.roundTrip),
		ErrorHandler: s.fail,
	}
	return s
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// apply takes a route entry: a newer epoch fences the member it names,
// an active entry becomes the target. Entries older than the newest epoch
// seen, or naming a fenced member, are refused.
func (s *trafficSwitch) apply(e route.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Epoch < s.epoch {
		s.stale.Add(1)
		return
	}
	s.epoch = e.Epoch
	if e.Fenced != "" {
		s.fenced[e.Fenced] = max(s.fenced[e.Fenced], e.Epoch)
	}
	var next *trafficTarget
	if e.State == route.StateActive {
		u, err := url.Parse(e.Endpoint)
		if fe, ok := s.fenced[e.Active]; ok && fe >= e.Epoch {
			s.stale.Add(1)
			s.log.Warn("traffic: route names a fenced member, refused", "service", e.Service, "member", e.Active, "epoch", e.Epoch)
			return
		} else if err != nil || u.Host == "" {
			s.log.Warn("traffic: bad endpoint in route, ignored", "service", e.Service, "endpoint", e.Endpoint)
			return
		}
		next = &trafficTarget{member: e.Active, url: u, epoch: e.Epoch}
		s.addDrain(next, e)
	}
	prev := s.cur.Swap(next)
	if next != nil && (prev == nil || prev.member != next.member || prev.altWeight != next.altWeight) {
		s.switches.Add(1)
		s.log.Info("traffic switched", "service", e.Service, "member", next.member, "endpoint", e.Endpoint, "epoch", e.Epoch, "drain_to", next.alt, "drain_weight", next.altWeight)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// addDrain adds the draining target of e (the one weighted member besides
// Active) to t; a fenced or malformed one is ignored (Active keeps it all).
func (s *trafficSwitch) addDrain(t *trafficTarget, e route.Entry) {
	for m, w := range e.Weights {
		if m == e.Active || w == 0 {
			continue
		}
		u, err := url.Parse(e.WeightEndpoints[m])
		if fe, ok := s.fenced[m]; (ok && fe >= e.Epoch) || err != nil || u.Host == "" {
			s.stale.Add(1)
			s.log.Warn("traffic: draining target refused", "service", e.Service, "member", m, "epoch", e.Epoch)
			return
		}
		t.alt, t.altURL, t.altWeight = m, u, w
		return
	}
}

// waitChange waits until the target differs from prev and is not nil,
// for at most SwitchWait or until ctx ends.
func (s *trafficSwitch) waitChange(ctx context.Context, prev *trafficTarget) *trafficTarget {
	deadline := time.NewTimer(s.cfg.SwitchWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if t := s.cur.Load(); t != nil && t != prev {
			return t
		}
		select {
		case <-ch:
		case <-deadline.C:
			return s.cur.Load()
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *trafficSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength >= 0 && r.ContentLength <= s.cfg.MaxRetryBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxRetryBody+1))
		if err != nil {
			s.errors.Add(1)
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	s.proxy.ServeHTTP(w, r)
}

// roundTrip sends req to the current member; when that fails before a
// response (the member is gone), it waits for the route to switch and
// retries once on the new member.
func (s *trafficSwitch) roundTrip(req *http.Request) (*http.Response, error) {
	t := s.cur.Load()
	if t == nil {
		t = s.waitChange(req.Context(), nil)
		if t == nil {
			return nil, errNoRoute
		}
	}
	first := t.pick()
	resp, err := s.base.RoundTrip(s.outbound(req, first))
	if err == nil || req.Context().Err() != nil {
		return resp, err
	}
	canRetry := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !canRetry {
		return nil, err
	}
	var to *url.URL
	switch {
	case t.altURL != nil && first == t.url: // draining: the other member
		to = t.altURL
	case t.altURL != nil:
		to = t.url
	default:
		next := s.waitChange(req.Context(), t)
		if next == nil {
			return nil, err
		}
		to = next.pick()
	}
	out := s.outbound(req, to)
	if req.GetBody != nil {
		if out.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	s.retries.Add(1)
	return s.base.RoundTrip(out)
}

var errNoRoute = errors.New("no active member for the service")

func (s *trafficSwitch) outbound(req *http.Request, u *url.URL) *http.Request {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
	if p := u.Path; p != "" && p != "/" {
		out.URL.Path = p + out.URL.Path
		out.URL.RawPath = ""
	}
	out.Host = u.Host
	return out
}

func (s *trafficSwitch) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.errors.Add(1)
	code := http.StatusBadGateway
	if errors.Is(err, errNoRoute) {
		code = http.StatusServiceUnavailable
	}
	http.Error(w, "vigil traffic switch "+s.cfg.Service+": "+err.Error(), code)
}

// Name and Collect make the switch a collector of its own counters:
// measurement traffic (tag service): requests, errors, switches, retries,
// stale_refused, epoch, up (1 while a member is active).
func (s *trafficSwitch) Name() string { return "traffic" }

func (s *trafficSwitch) Collect(_ context.Context, _ time.Time, emit Emit) error {
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	up := int64(0)
	if s.cur.Load() != nil {
		up = 1
	}
	emit("traffic", []wire.Tag{{Key: "service", Value: s.cfg.Service}}, []wire.Field{
		wire.I("requests", int64(s.requests.Load())),
		wire.I("errors", int64(s.errors.Load())),
		wire.I("switches", int64(s.switches.Load())),
		wire.I("retries", int64(s.retries.Load())),
		wire.I("stale_refused", int64(s.stale.Load())),
		wire.I("epoch", int64(epoch)),
		wire.I("up", up),
	})
	return nil
}

// follow keeps the switch on the route table until ctx ends, reopening
// the bucket and the watch when they are missing or fail.
func (s *trafficSwitch) follow(ctx context.Context, nc *nats.Conn) {
	js, err := jetstream.New(nc)
	if err != nil {
		s.log.Error("traffic: jetstream", "err", err)
		return
	}
	for ctx.Err() == nil {
		kv, err := route.Open(ctx, js)
		if err == nil {
			err = route.Watch(ctx, kv, s.cfg.Service, s.apply)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("traffic: route table unavailable, retrying", "service", s.cfg.Service, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// startTraffic starts the configured traffic switches; the returned stop
// ends them and waits for their goroutines.
func (a *Agent) startTraffic(ctx context.Context, nc *nats.Conn) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var servers []*http.Server
	stop := func() {
		cancel()
		for _, srv := range servers {
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(sctx)
			c()
		}
		wg.Wait()
	}
	for _, tc := range a.cfg.Traffic {
		sw := newTrafficSwitch(tc, a.log.With("service", tc.Service))
		ln, err := net.Listen("tcp", tc.Listen)
		if err != nil {
			stop()
			return nil, fmt.Errorf("traffic %s: listen: %w", tc.Service, err)
		}
		srv := &http.Server{Handler: sw, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		wg.Add(2)
		go func() { defer wg.Done(); sw.follow(ctx, nc) }()
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("traffic: serve", "service", tc.Service, "err", err)
			}
		}()
		a.AddCollector(sw)
		a.log.Info("traffic switch listening", "service", tc.Service, "addr", ln.Addr().String())
	}
	return stop, nil
}

var _ Collector = (*trafficSwitch)(nil)
