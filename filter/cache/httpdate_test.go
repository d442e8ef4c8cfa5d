package cache

import (
	"testing"
	"time"
)

// FuzzParseHTTPDate: parseHTTPDate reads what time.Parse reads with the
// three HTTP-date layouts, and gives the same instant.
func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Sun Nov 16 08:49:37 1994",
		"sun, 06 NOV 1994 08:49:37 GMT", "Sun,   06 Nov 1994 8:49:37 GMT", "Sun, 06 Nov 1994 08:49:37.123456789123 GMT",
		"Sun, 06 Nov 1994 08:49:37,5 GMT", "Sun, 29 Feb 1996 00:00:00 GMT", "Sun, 29 Feb 1900 00:00:00 GMT", "Sun, 31 Apr 1994 00:00:00 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 23:60:00 GMT", "Sun, 06 Nov 1994 23:59:60 GMT", "Monday, 06-Nov--5 08:49:37 GMT",
		"Monday, 06-Nov-+9 08:49:37 GMT", "Monday, 06-Nov-69 08:49:37 GMT", "Monday, 06-Nov-68 08:49:37 GMT", "0", "Thu, 01 Jan 1970 00:00:00 GMT ",
		"Thu, 01 Jan 1970 00:00:00 gmt", "Sun Nov 6 08:49:37 1994", "Sun Nov 06 08:49:37 1994", "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 0000 00:00:00 GMT",
	} {
		f.Add(s)
	}
	layouts := [...]string{"Mon, 02 Jan 2006 15:04:05 GMT", "Monday, 02-Jan-06 15:04:05 GMT", "Mon Jan _2 15:04:05 2006"}
	f.Fuzz(func(t *testing.T, s string) {
		var want time.Time
		wantOK := false
		for _, layout := range layouts {
			if tm, err := time.Parse(layout, s); err == nil {
				want, wantOK = tm, true
				break
			}
		}
		got, ok := parseHTTPDate(s)
		if ok != wantOK || !got.Equal(want) {
			t.Fatalf("parseHTTPDate(%q) = %v, %v; time.Parse says %v, %v", s, got, ok, want, wantOK)
		}
	})
}
