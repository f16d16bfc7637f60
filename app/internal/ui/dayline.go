package ui

import (
	"time"

	"golang.org/x/text/unicode/bidi"
)

// dayOf numbers t's calendar day in the local time zone (days since 1
// January 1970), to tell whether two messages were written the same day.
func dayOf(t time.Time) int32 {
	y, m, d := t.Local().Date()
	return int32(time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Unix() / 86400)
}

// dayDate is the date of a day numbered by dayOf.
func dayDate(day int32) time.Time {
	return time.Unix(int64(day)*86400+12*3600, 0).UTC()
}

// dayLabel is the day separator's text for day, seen on day today:
// "Today", "Yesterday", "Monday, 30 November 2026" for a day of this
// year (or a future one, from a skewed clock), "30 Nov 2019" for older
// years.
func dayLabel(day, today int32) string {
	switch day {
	case today:
		return "Today"
	case today - 1:
		return "Yesterday"
	}
	d := dayDate(day)
	if d.Year() < dayDate(today).Year() {
		return d.Format("2 Jan 2006")
	}
	return d.Format("Monday, 2 January 2006")
}

// dayLabels caches dayLabel for the days in view: formatting in every
// frame would allocate. It starts over when the day changes.
type dayLabels struct {
	today  int32
	labels map[int32]string
}

func (c *dayLabels) label(day, today int32) string {
	if c.labels == nil || c.today != today || len(c.labels) > 256 {
		c.today, c.labels = today, map[int32]string{}
	}
	s, ok := c.labels[day]
	if !ok {
		s = dayLabel(day, today)
		c.labels[day] = s
	}
	return s
}

// nextMidnight is when the local day after now starts: "Today" becomes
// "Yesterday" then.
func nextMidnight(now time.Time) time.Time {
	y, m, d := now.Local().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.Local)
}

// rightToLeft reports whether s is a right-to-left paragraph: its first
// strong character (a letter with a direction) is of a right-to-left
// script, Hebrew or Arabic and the like (the Unicode bidirectional
// algorithm's rule P2). Text without one (digits, emoji) is left to right.
func rightToLeft(s string) bool {
	for i := 0; i < len(s); {
		p, size := bidi.LookupString(s[i:])
		if size == 0 {
			break
		}
		switch p.Class() {
		case bidi.R, bidi.AL:
			return true
		case bidi.L:
			return false
		}
		i += size
	}
	return false
}
