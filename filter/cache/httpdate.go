package cache

import "time"

// parseHTTPDate reads the three HTTP-date forms a recipient accepts (RFC
// 9110 §5.6.7), IMF-fixdate, then the obsolete RFC 850 and asctime, exactly
// as time.Parse reads them with the layouts
//
//	"Mon, 02 Jan 2006 15:04:05 GMT"
//	"Monday, 02-Jan-06 15:04:05 GMT"
//	"Mon Jan _2 15:04:05 2006"
//
// time.Parse is not used: its layout interpreter, with the formatter it
// shares code with, is about 80 KB of the module (README "Performance",
// module footprint). FuzzParseHTTPDate checks the two against each other,
// leniencies included: names in any case, the weekday not checked against
// the date, runs of spaces where the layout has one, a one-digit hour, a
// fraction after the seconds, a signed two-digit year.
func parseHTTPDate(s string) (time.Time, bool) {
	for form := range 3 {
		d := dateScanner{rest: s, ok: true}
		var year, month, day int
		switch form {
		case 0: // IMF-fixdate
			d.name(shortDays[:])
			d.literal(", ")
			day = d.number(true)
			d.literal(" ")
			month = d.name(shortMonths[:]) + 1
			d.literal(" ")
			year = d.longYear()
		case 1: // RFC 850
			d.name(longDays[:])
			d.literal(", ")
			day = d.number(true)
			d.literal("-")
			month = d.name(shortMonths[:]) + 1
			d.literal("-")
			year = d.shortYear()
		case 2: // asctime
			d.name(shortDays[:])
			d.literal(" ")
			month = d.name(shortMonths[:]) + 1
			d.literal(" ")
			if d.rest != "" && d.rest[0] == ' ' {
				d.rest = d.rest[1:]
			}
			day = d.number(false)
		}
		d.literal(" ")
		hour := d.number(false)
		d.literal(":")
		minute := d.number(true)
		d.literal(":")
		second := d.number(true)
		nsec := d.fraction()
		if form == 2 {
			d.literal(" ")
			year = d.longYear()
		} else {
			d.literal(" GMT")
		}
		if !d.ok || d.rest != "" || hour >= 24 || minute >= 60 || second >= 60 || day < 1 || day > daysIn(month, year) {
			continue
		}
		return time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC), true
	}
	return time.Time{}, false
}

var (
	shortDays   = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	longDays    = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	shortMonths = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// dateScanner consumes rest field by field; the first mismatch clears ok,
// and every later read then returns zero.
type dateScanner struct {
	rest string
	ok   bool
}

func (d *dateScanner) fail() int {
	d.ok = false
	return 0
}

// literal matches text, a space in it matching a run of spaces (or the end).
func (d *dateScanner) literal(text string) {
	for i := 0; i < len(text) && d.ok; i++ {
		switch {
		case text[i] == ' ':
			if d.rest != "" && d.rest[0] != ' ' {
				d.fail()
			}
			for d.rest != "" && d.rest[0] == ' ' {
				d.rest = d.rest[1:]
			}
		case d.rest == "" || d.rest[0] != text[i]:
			d.fail()
		default:
			d.rest = d.rest[1:]
		}
	}
}

// name matches the first of names that starts rest, ASCII letters in any
// case, and returns its index.
func (d *dateScanner) name(names []string) int {
	if !d.ok {
		return 0
	}
	for i, n := range names {
		if len(d.rest) >= len(n) && sameLetters(d.rest[:len(n)], n) {
			d.rest = d.rest[len(n):]
			return i
		}
	}
	return d.fail()
}

func sameLetters(a, b string) bool {
	for i := 0; i < len(a); i++ {
		if c1, c2 := a[i]|0x20, b[i]|0x20; a[i] != b[i] && (c1 != c2 || c1 < 'a' || c1 > 'z') {
			return false
		}
	}
	return true
}

// number reads two digits, or one when !twoDigits and no second follows.
func (d *dateScanner) number(twoDigits bool) int {
	if !d.ok || !isDigitAt(d.rest, 0) {
		return d.fail()
	}
	if !isDigitAt(d.rest, 1) {
		if twoDigits {
			return d.fail()
		}
		n := int(d.rest[0] - '0')
		d.rest = d.rest[1:]
		return n
	}
	n := int(d.rest[0]-'0')*10 + int(d.rest[1]-'0')
	d.rest = d.rest[2:]
	return n
}

func (d *dateScanner) longYear() int {
	if !d.ok || len(d.rest) < 4 {
		return d.fail()
	}
	year := 0
	for i := range 4 {
		if !isDigitAt(d.rest, i) {
			return d.fail()
		}
		year = year*10 + int(d.rest[i]-'0')
	}
	d.rest = d.rest[4:]
	return year
}

// shortYear reads a two-character year as time.Parse does: an optional sign
// and digits, 69–99 in the 1900s and the rest in the 2000s.
func (d *dateScanner) shortYear() int {
	if !d.ok || len(d.rest) < 2 {
		return d.fail()
	}
	text, neg := d.rest[:2], false
	if text[0] == '-' || text[0] == '+' {
		text, neg = text[1:], text[0] == '-'
	}
	year := 0
	for i := range len(text) {
		if !isDigitAt(text, i) {
			return d.fail()
		}
		year = year*10 + int(text[i]-'0')
	}
	d.rest = d.rest[2:]
	if neg {
		year = -year
	}
	if year >= 69 {
		return 1900 + year
	}
	return 2000 + year
}

// fraction reads an optional fraction of a second ("." or "," and digits,
// the first nine significant) and returns it in nanoseconds.
func (d *dateScanner) fraction() int {
	if !d.ok || len(d.rest) < 2 || d.rest[0] != '.' && d.rest[0] != ',' || !isDigitAt(d.rest, 1) {
		return 0
	}
	nsec, scale, n := 0, 100_000_000, 1
	for ; isDigitAt(d.rest, n); n++ {
		if scale > 0 {
			nsec += int(d.rest[n]-'0') * scale
			scale /= 10
		}
	}
	d.rest = d.rest[n:]
	return nsec
}

func isDigitAt(s string, i int) bool { return i < len(s) && s[i] >= '0' && s[i] <= '9' }
