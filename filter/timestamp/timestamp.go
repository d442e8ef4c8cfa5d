// Package timestamp writes UTC times as ISO 8601 text, as time.Format would
// with the two layouts the gateway uses, for years 0 to 9999. It exists
// because time's layout formatter is about 35 KB of the module, which Envoy
// compiles and keeps in memory (README "Performance", module footprint).
// FuzzSeconds and FuzzMillis check it against time.Format.
package timestamp

import "time"

// Seconds is t.UTC().Format(time.RFC3339): "2006-01-02T15:04:05Z".
func Seconds(t time.Time) string {
	return string(append(appendSeconds(make([]byte, 0, len("2006-01-02T15:04:05Z")), t.UTC()), 'Z'))
}

// Millis is t.UTC().Format("2006-01-02T15:04:05.000Z"), the text of
// JavaScript's Date.toISOString (the fraction truncated to milliseconds).
func Millis(t time.Time) string {
	t = t.UTC()
	b := appendSeconds(make([]byte, 0, len("2006-01-02T15:04:05.000Z")), t)
	b = appendDigits(append(b, '.'), t.Nanosecond()/int(time.Millisecond), 3)
	return string(append(b, 'Z'))
}

func appendSeconds(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	return appendDigits(append(b, ':'), second, 2)
}

// appendDigits appends n (0 ≤ n < 10^width) zero-padded to width digits.
func appendDigits(b []byte, n, width int) []byte {
	scale := 1
	for range width - 1 {
		scale *= 10
	}
	for ; scale > 0; scale /= 10 {
		b = append(b, byte('0'+n/scale%10))
	}
	return b
}
