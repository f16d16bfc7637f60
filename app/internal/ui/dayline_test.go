package ui

import (
	"testing"
	"time"
)

func TestDayLabel(t *testing.T) {
	day := func(y int, m time.Month, d int) int32 { return dayOf(time.Date(y, m, d, 15, 0, 0, 0, time.Local)) }
	today := day(2026, 11, 30)
	for _, c := range []struct {
		day  int32
		want string
	}{
		{day(2026, 11, 30), "Today"},
		{day(2026, 11, 29), "Yesterday"},
		{day(2026, 11, 28), "Saturday, 28 November 2026"},
		{day(2026, 1, 1), "Thursday, 1 January 2026"},
		{day(2025, 12, 31), "31 Dec 2025"},
		{day(2019, 2, 3), "3 Feb 2019"},
		{day(2026, 12, 1), "Tuesday, 1 December 2026"}, // a clock ahead
	} {
		if got := dayLabel(c.day, today); got != c.want {
			t.Errorf("dayLabel(%v) = %q, want %q", dayDate(c.day).Format(time.DateOnly), got, c.want)
		}
	}
	// New year's day: the last day of the old year is yesterday, the one
	// before has the short form.
	ny := day(2027, 1, 1)
	if got := dayLabel(day(2026, 12, 31), ny); got != "Yesterday" {
		t.Errorf("new year's eve seen on new year's day: %q", got)
	}
	if got := dayLabel(day(2026, 12, 30), ny); got != "30 Dec 2026" {
		t.Errorf("30 December seen on new year's day: %q", got)
	}
	// Local days: a minute before and after local midnight are two days.
	mid := time.Date(2026, 6, 1, 0, 0, 0, 0, time.Local)
	if dayOf(mid.Add(-time.Minute)) != dayOf(mid)-1 || dayOf(mid.Add(time.Minute)) != dayOf(mid) {
		t.Error("dayOf does not split at local midnight")
	}
	if got := nextMidnight(mid.Add(-time.Minute)); !got.Equal(mid) {
		t.Errorf("nextMidnight = %v", got)
	}
}

func TestRightToLeft(t *testing.T) {
	for s, want := range map[string]bool{
		"hello":           false,
		"שלום":            true,
		"مرحبا":           true,
		"123 שלום":        true, // digits are weak: the Hebrew decides
		"  «مرحبا» world": true,
		"hello שלום":      false,
		"😀 hi":            false,
		"123":             false,
		"":                false,
		"ܫܠܡܐ (Syriac)":   true,
		"Ελληνικά עברית":  false,
		"\u200fhey":       true, // a right-to-left mark is strong: it decides
	} {
		if got := rightToLeft(s); got != want {
			t.Errorf("rightToLeft(%q) = %v, want %v", s, got, want)
		}
	}
}
