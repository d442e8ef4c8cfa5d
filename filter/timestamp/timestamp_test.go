package timestamp

import (
	"testing"
	"time"
)

func seed(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1700000000), int64(999999999))
	f.Add(int64(951782400), int64(1500000)) // 2000-02-29
	f.Add(int64(-62167219200), int64(0))    // 0000-01-01
	f.Add(int64(253402300799), int64(999_999_999))
}

// inRange reports whether t's UTC year has four digits, the only years the
// gateway's clock gives.
func inRange(t time.Time) bool { y := t.UTC().Year(); return y >= 0 && y <= 9999 }

func FuzzSeconds(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		at := time.Unix(sec, nsec)
		if !inRange(at) {
			return
		}
		if got, want := Seconds(at), at.UTC().Format(time.RFC3339); got != want {
			t.Fatalf("Seconds(%d.%09d) = %q, Format says %q", sec, nsec, got, want)
		}
	})
}

func FuzzMillis(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		at := time.Unix(sec, nsec)
		if !inRange(at) {
			return
		}
		if got, want := Millis(at), at.UTC().Format("2006-01-02T15:04:05.000Z"); got != want {
			t.Fatalf("Millis(%d.%09d) = %q, Format says %q", sec, nsec, got, want)
		}
	})
}
