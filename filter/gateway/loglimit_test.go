package gateway_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/gateway"
)

func TestLogLimiterBoundsLinesPerReasonAndReportsTheRest(t *testing.T) {
	l := gateway.NewLogLimiter(3)
	t0 := time.Unix(1_900_000_000, 0)
	admitted := 0
	for i := range 10 {
		ok, suppressed := l.Admit("jwt_bad_signature", t0.Add(time.Duration(i)*time.Millisecond))
		if suppressed != 0 {
			t.Fatalf("reported %d suppressed within the first second", suppressed)
		}
		if ok {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("admitted %d lines in one second, want 3", admitted)
	}
	// Another reason has its own budget.
	if ok, _ := l.Admit("route_not_found", t0); !ok {
		t.Error("another reason was held back")
	}
	// The next second: the first line comes with the count held back.
	ok, suppressed := l.Admit("jwt_bad_signature", t0.Add(time.Second))
	if !ok || suppressed != 7 {
		t.Fatalf("next second: ok %v, suppressed %d; want a line and 7 held back", ok, suppressed)
	}
	if _, suppressed := l.Admit("jwt_bad_signature", t0.Add(time.Second)); suppressed != 0 {
		t.Errorf("held-back lines reported twice")
	}
}

func TestLogLimiterOverdueReportsOnce(t *testing.T) {
	l := gateway.NewLogLimiter(1)
	t0 := time.Unix(1_900_000_000, 0)
	for range 5 {
		l.Admit("jwt_expired", t0)
	}
	got := map[string]int{}
	l.Overdue(t0, func(r string, n int) { got[r] = n })
	if len(got) != 0 {
		t.Fatalf("reported within the same second: %v", got)
	}
	l.Overdue(t0.Add(time.Second), func(r string, n int) { got[r] = n })
	l.Overdue(t0.Add(2*time.Second), func(r string, n int) { got[r] += n })
	if got["jwt_expired"] != 4 || len(got) != 1 {
		t.Errorf("overdue = %v, want jwt_expired: 4 once", got)
	}
	if ok, suppressed := l.Admit("jwt_expired", t0.Add(3*time.Second)); !ok || suppressed != 0 {
		t.Errorf("after the tick reported them: ok %v, suppressed %d", ok, suppressed)
	}
	line := gateway.SuppressedLine("jwt_expired", 4)
	if line[:len(`{"event":"gateway_error_suppressed","reason":"jwt_expired","suppressed":4`)] != `{"event":"gateway_error_suppressed","reason":"jwt_expired","suppressed":4` {
		t.Errorf("line %s", line)
	}
}

func TestLogLimiterOff(t *testing.T) {
	l := gateway.NewLogLimiter(0)
	for range 1000 {
		if ok, _ := l.Admit("x", time.Unix(0, 0)); !ok {
			t.Fatal("a limiter of 0 held a line back")
		}
	}
}
