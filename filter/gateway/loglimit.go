package gateway

import (
	"strconv"
	"time"

	"github.com/portcullis/portcullis/filter/jsonobj"
)

// LogLimiter bounds the error log lines of one VM: at most perSecond lines
// per reason in each second of the clock, so that a client spraying bad
// tokens cannot turn into a log flood. What it holds back is counted and
// reported once per reason and second, as one line (SuppressedLine).
type LogLimiter struct {
	perSecond int
	reasons   map[string]*logWindow
}

type logWindow struct {
	second     int64
	lines      int
	suppressed int // held back in second, not yet reported
}

// NewLogLimiter allows perSecond lines per reason per second; 0 or less
// allows every line.
func NewLogLimiter(perSecond int) *LogLimiter {
	return &LogLimiter{perSecond: perSecond, reasons: map[string]*logWindow{}}
}

// Admit reports whether a line for reason may be written at now, and how
// many lines for it were held back in an earlier second and not yet
// reported (to be reported first).
func (l *LogLimiter) Admit(reason string, now time.Time) (ok bool, suppressed int) {
	if l.perSecond <= 0 {
		return true, 0
	}
	w := l.reasons[reason]
	if w == nil {
		w = &logWindow{}
		l.reasons[reason] = w // bounded: reasons are a fixed list
	}
	if sec := now.Unix(); sec != w.second {
		suppressed = w.suppressed
		*w = logWindow{second: sec}
	}
	if w.lines < l.perSecond {
		w.lines++
		return true, suppressed
	}
	w.suppressed++
	return false, suppressed
}

// Overdue returns, for each reason whose held-back lines belong to a second
// before now's, their count, and forgets them: the tick reports them when no
// new line for the reason came to do it.
func (l *LogLimiter) Overdue(now time.Time, report func(reason string, suppressed int)) {
	sec := now.Unix()
	for reason, w := range l.reasons {
		if w.suppressed > 0 && w.second != sec {
			report(reason, w.suppressed)
			w.suppressed = 0
		}
	}
}

// SuppressedLine is the line that reports n held-back lines for reason.
func SuppressedLine(reason string, n int) string {
	var o jsonobj.Object
	o.String("event", "gateway_error_suppressed").String("reason", reason).Int("suppressed", n).
		String("message", "at most the configured log.errors_per_second lines per reason; "+strconv.Itoa(n)+" more were not written")
	return string(o.Bytes())
}
