package alert

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route is a compiled routing node with its inherited settings resolved.
type route struct {
	id             string // position in the tree: "0", "0.1", "0.1.0"
	receiver       string
	matchers       Matchers
	cont           bool
	groupBy        []string
	groupAll       bool
	groupWait      time.Duration
	groupInterval  time.Duration
	repeatInterval time.Duration
	mute, active   []string
	children       []*route
}

// compileRoutes builds the tree, resolving inheritance as Alertmanager
// does: a child takes every setting it does not set from its parent.
func compileRoutes(c RootRoute) (*route, error) {
	root := &route{
		id: "0", receiver: c.Receiver, groupBy: c.GroupBy, groupWait: c.GroupWait,
		groupInterval: c.GroupInterval, repeatInterval: c.RepeatInterval,
		mute: c.MuteTimeIntervals, active: c.ActiveTimeIntervals,
	}
	root.groupAll = len(c.GroupBy) == 1 && c.GroupBy[0] == "..."
	for i := range c.Routes {
		ch, err := compileRoute(root, &c.Routes[i], root.id+"."+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		root.children = append(root.children, ch)
	}
	return root, nil
}

func compileRoute(parent *route, c *Route, id string) (*route, error) {
	ms, err := ParseMatchers(c.Matchers)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", id, err)
	}
	r := &route{id: id, receiver: parent.receiver, matchers: ms, cont: c.Continue, groupBy: parent.groupBy,
		groupAll: parent.groupAll, groupWait: parent.groupWait, groupInterval: parent.groupInterval,
		repeatInterval: parent.repeatInterval, mute: parent.mute, active: parent.active}
	if c.Receiver != "" {
		r.receiver = c.Receiver
	}
	if len(c.GroupBy) > 0 {
		r.groupBy = c.GroupBy
		r.groupAll = len(c.GroupBy) == 1 && c.GroupBy[0] == "..."
	}
	if c.GroupWait != nil {
		r.groupWait = *c.GroupWait
	}
	if c.GroupInterval != nil {
		r.groupInterval = *c.GroupInterval
	}
	if c.RepeatInterval != nil {
		r.repeatInterval = *c.RepeatInterval
	}
	if c.MuteTimeIntervals != nil {
		r.mute = c.MuteTimeIntervals
	}
	if c.ActiveTimeIntervals != nil {
		r.active = c.ActiveTimeIntervals
	}
	for i := range c.Routes {
		ch, err := compileRoute(r, &c.Routes[i], id+"."+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		r.children = append(r.children, ch)
	}
	return r, nil
}

// match returns the routes an alert goes to: depth first, the first
// matching child (and the following ones while a matching child has
// continue set); a node none of whose children match takes the alert
// itself.
func (r *route) match(l Labels) []*route {
	if !r.matchers.Matches(l) {
		return nil
	}
	var out []*route
	for _, ch := range r.children {
		m := ch.match(l)
		out = append(out, m...)
		if len(m) > 0 && !ch.cont {
			break
		}
	}
	if len(out) == 0 {
		out = []*route{r}
	}
	return out
}

// groupLabels are the labels that make an alert's aggregation group on
// this route.
func (r *route) groupLabels(l Labels) Labels {
	out := Labels{}
	if r.groupAll {
		for k, v := range l {
			out[k] = v
		}
		return out
	}
	for _, k := range r.groupBy {
		if v, ok := l[k]; ok {
			out[k] = v
		}
	}
	return out
}

// walk visits every route.
func (r *route) walk(f func(*route)) {
	f(r)
	for _, ch := range r.children {
		ch.walk(f)
	}
}

// receivers lists the receivers the tree uses.
func (r *route) receivers() []string {
	seen := map[string]bool{}
	r.walk(func(x *route) { seen[x.receiver] = true })
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *route) String() string {
	return fmt.Sprintf("route %s → %s (group_by %s)", r.id, r.receiver, strings.Join(r.groupBy, ","))
}
