package rules

import (
	"fmt"
	"strconv"
	"time"
)

// Fleet functions: how many, or what share, of the hosts of a role match a
// condition. They work in every scope; role "" means every host. In scope
// fleet the variable role is the subject; in scope host, the host's own
// role label. Answers are computed once per evaluation round and argument
// set, so a host rule reading them costs O(hosts) once, not per host.
//
//	hosts(role) int                                 hosts of the role
//	count_hosts(role, sel, op, threshold) int       hosts whose value(sel) op threshold holds;
//	                                                op is a literal: > >= < <= == !=
//	share_hosts(role, sel, op, threshold) float64   that count / hosts with data for sel, in [0,1]
//	silent_hosts(role, d) int                       hosts not heard from for at least d
//	share_silent(role, d) float64                   that count / hosts of the role
//
// A role without hosts (or, for share_hosts, without data) is no data.
// Capture keys: hosts:<role>, count_hosts:<role>:<selector><op><threshold>,
// share_hosts:…, silent_hosts:<role>:<d>, share_silent:<role>:<d>.

// Comparisons accepted by count_hosts and share_hosts.
var fleetOps = []string{">", ">=", "<", "<=", "==", "!="}

var fleetFuncSpecs = []*funcSpec{
	{name: "hosts", fleet: true, types: []any{new(func(string) int)}, call: callHosts},
	{name: "count_hosts", fleet: true, selector: true, selArg: 1, lits: map[int][]string{2: fleetOps},
		types: []any{new(func(string, string, string, float64) int)}, call: fleetMatch("count_hosts")},
	{name: "share_hosts", fleet: true, selector: true, selArg: 1, lits: map[int][]string{2: fleetOps},
		types: []any{new(func(string, string, string, float64) float64)}, call: fleetMatch("share_hosts")},
	{name: "silent_hosts", fleet: true, types: []any{new(func(string, time.Duration) int)}, call: fleetSilent("silent_hosts")},
	{name: "share_silent", fleet: true, types: []any{new(func(string, time.Duration) float64)}, call: fleetSilent("share_silent")},
}

type fleetKey struct {
	fn, role, op string
	sel          *Selector
	arg          float64
}

type fleetVal struct {
	v   float64
	ok  bool
	key string
}

// fleetCached answers the cached value of k for this round, computing it
// with f the first time.
func (c *evalCtx) fleetCached(k fleetKey, f func() (float64, bool, string)) (float64, bool) {
	if c.fleetRound != c.round {
		clear(c.fleet)
		c.fleetRound = c.round
	}
	fv, hit := c.fleet[k]
	if !hit {
		fv.v, fv.ok, fv.key = f()
		c.fleet[k] = fv
	}
	if !fv.ok {
		c.noDataFor(fv.key)
		return 0, false
	}
	c.record(fv.key, fv.v)
	return fv.v, true
}

func callHosts(c *evalCtx, args []any) (any, error) {
	role, _ := args[0].(string)
	v, _ := c.fleetCached(fleetKey{fn: "hosts", role: role}, func() (float64, bool, string) {
		n := len(c.root.Hosts(role))
		return float64(n), n > 0, "hosts:" + role
	})
	return int(v), nil
}

func fleetMatch(name string) func(c *evalCtx, args []any) (any, error) {
	share := name == "share_hosts"
	return func(c *evalCtx, args []any) (any, error) {
		role, _ := args[0].(string)
		e, err := c.entry(args[1])
		if err != nil {
			return nil, err
		}
		op, _ := args[2].(string)
		thr, err := toFloat(args[3])
		if err != nil {
			return nil, err
		}
		v, _ := c.fleetCached(fleetKey{fn: name, role: role, op: op, sel: e.sel, arg: thr}, func() (float64, bool, string) {
			key := fmt.Sprintf("%s:%s:%s%s%s", name, role, e.canon, op, strconv.FormatFloat(thr, 'g', -1, 64))
			n, with := 0, 0
			for _, h := range c.root.Hosts(role) {
				if x, ok := c.root.Value(h, e.sel); ok {
					with++
					if compare(x, op, thr) {
						n++
					}
				}
			}
			if share {
				if with == 0 {
					return 0, false, key
				}
				return float64(n) / float64(with), true, key
			}
			return float64(n), len(c.root.Hosts(role)) > 0, key
		})
		if share {
			return v, nil
		}
		return int(v), nil
	}
}

func fleetSilent(name string) func(c *evalCtx, args []any) (any, error) {
	share := name == "share_silent"
	return func(c *evalCtx, args []any) (any, error) {
		role, _ := args[0].(string)
		d, err := toDuration(args[1])
		if err != nil {
			return nil, err
		}
		v, _ := c.fleetCached(fleetKey{fn: name, role: role, arg: float64(d)}, func() (float64, bool, string) {
			key := name + ":" + role + ":" + formatDuration(d)
			hosts := c.root.Hosts(role)
			n := 0
			for _, h := range hosts {
				if t, ok := c.root.LastSeen(h); !ok || c.now.Sub(t) >= d {
					n++
				}
			}
			if len(hosts) == 0 {
				return 0, false, key
			}
			if share {
				return float64(n) / float64(len(hosts)), true, key
			}
			return float64(n), true, key
		})
		if share {
			return v, nil
		}
		return int(v), nil
	}
}

func compare(x float64, op string, thr float64) bool {
	switch op {
	case ">":
		return x > thr
	case ">=":
		return x >= thr
	case "<":
		return x < thr
	case "<=":
		return x <= thr
	case "==":
		return x == thr
	case "!=":
		return x != thr
	}
	return false
}
