package storage

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/qunshao/qunshao/bot"
	"gorm.io/gorm"
)

// roster is the writer's in-memory copy of one group's roster history, used
// to stamp each message with its sender's role at the time without a query
// per message.
type roster struct {
	byAccount map[string][]obs
}

// obs is one roster observation (a MemberState without the bookkeeping).
type obs struct {
	at      int64
	present bool
	role    bot.Role
	nick    string
	card    string
	joined  int64
}

func newRoster() *roster { return &roster{byAccount: map[string][]obs{}} }

// at returns the account's observation in force at t: the last one made at
// or before t.
func (r *roster) at(account string, t int64) (obs, bool) {
	list := r.byAccount[account]
	// Observations are sorted by time; ties keep insertion order, and the
	// later one wins.
	i := sort.Search(len(list), func(i int) bool { return list[i].at > t })
	if i == 0 {
		return obs{}, false
	}
	return list[i-1], true
}

// add inserts an observation in time order (after any with the same time).
func (r *roster) add(account string, o obs) {
	list := r.byAccount[account]
	i := sort.Search(len(list), func(i int) bool { return list[i].at > o.at })
	list = append(list, obs{})
	copy(list[i+1:], list[i:])
	list[i] = o
	r.byAccount[account] = list
}

// presentAt lists accounts that were in the group at t.
func (r *roster) presentAt(t int64) map[string]obs {
	out := make(map[string]obs)
	for acc := range r.byAccount {
		if o, ok := r.at(acc, t); ok && o.present {
			out[acc] = o
		}
	}
	return out
}

// resolveRole decides the role recorded with an event of account at t:
// the roster history when it knows, otherwise what the platform reported,
// otherwise unknown. It never guesses.
func (r *roster) resolveRole(account string, t int64, reported bot.Role) (bot.Role, string) {
	if account != "" {
		if o, ok := r.at(account, t); ok && o.present && o.role.Valid() && o.role != bot.RoleUnknown {
			return o.role, RoleSourceRoster
		}
	}
	if reported.Valid() && reported != bot.RoleUnknown {
		return reported, RoleSourceReported
	}
	return bot.RoleUnknown, RoleSourceNone
}

func loadRoster(ctx context.Context, db *gorm.DB, groupKey string) (*roster, error) {
	var rows []MemberState
	err := db.WithContext(ctx).Where("group_key = ?", groupKey).Order("at_us, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load roster history of %s: %w", groupKey, err)
	}
	r := newRoster()
	for _, m := range rows {
		r.byAccount[m.AccountID] = append(r.byAccount[m.AccountID], obs{
			at: m.AtUS, present: m.Present, role: m.role(), nick: m.Nick, card: m.Card, joined: m.JoinedUS,
		})
	}
	return r, nil
}

// Staff is a person holding a role in a group at a given moment.
type Staff struct {
	AccountID string
	Role      bot.Role
	Nick      string
	Card      string
	// Since is when the roster history first shows them in this role in
	// the current stretch.
	Since time.Time
}

// RoleAt returns the role account held in the group at t according to the
// roster history, and false when the history says nothing about that
// moment (or the account was not in the group then).
func (s *Store) RoleAt(ctx context.Context, groupKey, account string, t time.Time) (bot.Role, bool, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var m MemberState
	err := s.db.WithContext(ctx).Where("group_key = ? AND account_id = ? AND at_us <= ?", groupKey, account, t.UnixMicro()).
		Order("at_us DESC, id DESC").Limit(1).Find(&m).Error
	if err != nil {
		return bot.RoleUnknown, false, fmt.Errorf("role of %s in %s: %w", account, groupKey, err)
	}
	if m.ID == 0 || !m.Present {
		return bot.RoleUnknown, false, nil
	}
	return m.role(), true, nil
}

// StaffAt lists the owner and admins of a group at t, owner first.
func (s *Store) StaffAt(ctx context.Context, groupKey string, t time.Time) ([]Staff, error) {
	members, err := s.MembersAt(ctx, groupKey, t)
	if err != nil {
		return nil, err
	}
	var out []Staff
	for _, m := range members {
		if m.Role.Staff() {
			out = append(out, m)
		}
	}
	return out, nil
}

// MembersAt lists everyone in the group at t according to the roster
// history, owner first, then admins, then the rest by account id.
func (s *Store) MembersAt(ctx context.Context, groupKey string, t time.Time) ([]Staff, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows []MemberState
	err := s.db.WithContext(ctx).Where("group_key = ? AND at_us <= ?", groupKey, t.UnixMicro()).
		Order("account_id, at_us, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("members of %s at %s: %w", groupKey, t.Format(time.RFC3339), err)
	}
	var out []Staff
	for i := 0; i < len(rows); {
		j := i
		for j+1 < len(rows) && rows[j+1].AccountID == rows[i].AccountID {
			j++
		}
		last := rows[j]
		if last.Present {
			// Walk back over the stretch in which the role did not change.
			since := last.AtUS
			for k := j - 1; k >= i && rows[k].Present && rows[k].Role == last.Role; k-- {
				since = rows[k].AtUS
			}
			out = append(out, Staff{AccountID: last.AccountID, Role: last.role(), Nick: last.Nick, Card: last.Card,
				Since: time.UnixMicro(since).UTC()})
		}
		i = j + 1
	}
	rank := map[bot.Role]int{bot.RoleOwner: 0, bot.RoleAdmin: 1, bot.RoleMember: 2, bot.RoleUnknown: 3}
	sort.SliceStable(out, func(a, b int) bool {
		ra, rb := rank[out[a].Role], rank[out[b].Role]
		if ra != rb {
			return ra < rb
		}
		return out[a].AccountID < out[b].AccountID
	})
	return out, nil
}

// Interval is a stretch of time during which an account was in a group
// with one role. Until is zero while it lasts.
type Interval struct {
	Role  bot.Role
	Nick  string
	Card  string
	From  time.Time
	Until time.Time
}

// Memberships returns the membership intervals of account in a group, in
// time order. Consecutive observations with the same role form one
// interval; a change of nick or card does not split it (the latest is
// reported).
func (s *Store) Memberships(ctx context.Context, groupKey, account string) ([]Interval, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows []MemberState
	err := s.db.WithContext(ctx).Where("group_key = ? AND account_id = ?", groupKey, account).
		Order("at_us, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("memberships of %s in %s: %w", account, groupKey, err)
	}
	var out []Interval
	open := -1
	for _, m := range rows {
		at := time.UnixMicro(m.AtUS).UTC()
		if open >= 0 && (!m.Present || bot.Role(m.Role) != out[open].Role) {
			out[open].Until = at
			open = -1
		}
		if !m.Present {
			continue
		}
		if open < 0 {
			out = append(out, Interval{Role: m.role(), From: at})
			open = len(out) - 1
		}
		out[open].Nick, out[open].Card = m.Nick, m.Card
	}
	return out, nil
}
