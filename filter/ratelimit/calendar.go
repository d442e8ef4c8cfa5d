package ratelimit

import (
	"fmt"
	"time"
)

// Calendar makes a limit a quota over calendar windows: the requests of one
// day, one week (Monday to Sunday, as ISO 8601) or one month, counted from
// the window's start in the limit's zone (Limit.UTCOffset) and forgotten at
// its end. CalendarNone is a GCRA or strict limit over Limit.Window.
type Calendar uint8

const (
	CalendarNone Calendar = iota
	CalendarDay
	CalendarWeek
	CalendarMonth
)

// Bounds of calendar quotas.
const (
	// MaxCalendarWindow is the longest calendar window, a 31-day month: the
	// largest debt any stored value can describe (see maxDebt).
	MaxCalendarWindow = 31 * 24 * time.Hour
	// MaxUTCOffset bounds Limit.UTCOffset: real zones lie between UTC−12:00
	// and UTC+14:00.
	MaxUTCOffset = 14 * time.Hour
)

// nominal is the window reported as w in RateLimit-Policy: the exact length
// of a day or week, and 30 days for a month (a month's exact end is what t
// and Reset report).
func (c Calendar) nominal() time.Duration {
	switch c {
	case CalendarDay:
		return 24 * time.Hour
	case CalendarWeek:
		return 7 * 24 * time.Hour
	case CalendarMonth:
		return 30 * 24 * time.Hour
	}
	return 0
}

// String is the configuration's name of c.
func (c Calendar) String() string {
	switch c {
	case CalendarDay:
		return "day"
	case CalendarWeek:
		return "week"
	case CalendarMonth:
		return "month"
	case CalendarNone:
		return "none"
	}
	return fmt.Sprintf("Calendar(%d)", uint8(c))
}

// ParseCalendar reads a calendar window's name: day, week or month.
func ParseCalendar(s string) (Calendar, bool) {
	for _, c := range []Calendar{CalendarDay, CalendarWeek, CalendarMonth} {
		if s == c.String() {
			return c, true
		}
	}
	return CalendarNone, false
}

const day = int64(24 * time.Hour)

// window is the calendar window [start, end) (Unix ns) holding at, in the
// zone UTC+offset. Weeks start on Monday: 1970-01-05, four days after the
// Unix epoch (a Thursday).
func (c Calendar) window(at, offset int64) (start, end int64) {
	local := at + offset
	switch c {
	case CalendarDay:
		start = floorDiv(local, day) * day
		return start - offset, start + day - offset
	case CalendarWeek:
		const week, monday = 7 * day, 4 * day
		start = floorDiv(local-monday, week)*week + monday
		return start - offset, start + week - offset
	}
	y, m, _ := time.Unix(0, local).UTC().Date()
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	return first.UnixNano() - offset, first.AddDate(0, 1, 0).UnixNano() - offset
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// A calendar quota keeps one stored value per key: end + spent, the end of
// the window it counts (Unix ns) plus the units spent in it (at most
// MaxRequests, so under a second). As a time, the value lies in the future
// exactly while the window's spend matters, so the table sees the entry as
// active until the window ends and reuses it after, like a paid-off GCRA
// debt; the spend is a count, not a time, so raising a quota's requests by
// configuration keeps it.

// quotaSpent decodes a calendar quota's stored value v at the decision time
// at, in the window [start, end). A value of an earlier window (a past
// time, or the previous window's, which ends at start) is no spend. On an
// entry of the key's own (own) any other value before end is a repaired one
// and counts nothing; on a shared entry a value that is no window's is
// another key's state and counts as an exhausted quota (stricter, never
// more admissions).
func quotaSpent(v, at, start, end int64, own bool) int64 {
	switch {
	case v >= end && v-end <= MaxRequests:
		return v - end
	case v <= at || v >= start && v-start <= MaxRequests || own && v < end:
		return 0
	}
	return MaxRequests + 1
}
