package ratelimit

import (
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter/timestamp"
)

// Response header names, lower case as the plugin sets them.
const (
	HeaderLimit      = "x-ratelimit-limit"
	HeaderRemaining  = "x-ratelimit-remaining"
	HeaderReset      = "x-ratelimit-reset"
	HeaderPolicy     = "ratelimit-policy" // draft-ietf-httpapi-ratelimit-headers
	HeaderRateLimit  = "ratelimit"        // draft-ietf-httpapi-ratelimit-headers
	HeaderRetryAfter = "retry-after"      // RFC 9110 §10.2.3
)

// ResetFormat chooses how X-RateLimit-Reset is written.
type ResetFormat uint8

const (
	// ResetSeconds: whole seconds until the budget is full again, rounded up.
	ResetSeconds ResetFormat = iota
	// ResetTimestamp: the instant it is full again, as the tutorial sent it
	// (JavaScript's Date.toISOString: UTC, milliseconds, e.g.
	// "2026-01-02T15:04:05.000Z").
	ResetTimestamp
)

// ceilSeconds rounds d up to whole seconds: a client that waits that long
// finds the promised state.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// ResetSeconds is Reset in whole seconds, rounded up.
func (d *Decision) ResetSeconds() int64 { return ceilSeconds(d.Reset) }

// RetryAfterSeconds is the Retry-After value of a denial: RetryAfter in
// whole seconds, rounded up, at least 1. It is 0 for an admitted request.
func (d *Decision) RetryAfterSeconds() int64 {
	if d.Allowed {
		return 0
	}
	return max(ceilSeconds(d.RetryAfter), 1)
}

// FormatTimestamp writes t the way JavaScript's Date.toISOString does.
func FormatTimestamp(t time.Time) string { return timestamp.Millis(t) }

// policyItem is one item of RateLimit-Policy: `"name";q=100;w=60`.
func policyItem(l Limit) string {
	var b strings.Builder
	writePolicyItem(&b, l)
	return b.String()
}

func writePolicyItem(b *strings.Builder, l Limit) {
	b.WriteByte('"')
	b.WriteString(l.Name)
	b.WriteString(`";q=`)
	writeInt(b, l.Requests)
	b.WriteString(";w=")
	writeInt(b, int64(l.Window/time.Second))
}

// writeInt writes n in decimal without an allocation of its own.
func writeInt(b *strings.Builder, n int64) {
	var digits [20]byte
	b.Write(strconv.AppendInt(digits[:0], n, 10))
}

// PolicyField is the RateLimit-Policy value listing every limit of p, e.g.
// `"default";q=100;w=60` or `"api-1s";q=10;w=1, "api-3600s";q=1000;w=3600`.
// It is computed once by NewPolicy.
func (p *Policy) PolicyField() string { return p.field }

// writePolicyField writes the RateLimit-Policy value with the partition
// key pk (an sf-binary, see Partitioner) on every item; PolicyField itself
// when pk is "".
func (p *Policy) writePolicyField(b *strings.Builder, pk string) {
	if pk == "" {
		b.WriteString(p.field)
		return
	}
	for i, r := range p.rules {
		if i > 0 {
			b.WriteString(", ")
		}
		writePolicyItem(b, r.Limit)
		b.WriteString(";pk=")
		b.WriteString(pk)
	}
}

// writeRateLimitField writes the RateLimit value for the tightest limit,
// e.g. `"default";r=42;t=17`: r is Remaining, t is ResetSeconds (rounded
// up, so a client that waits t seconds finds the budget full), with the
// partition key pk when it is not "".
func (d *Decision) writeRateLimitField(b *strings.Builder, pk string) {
	b.WriteByte('"')
	b.WriteString(d.Limit.Name)
	b.WriteString(`";r=`)
	writeInt(b, d.Remaining)
	b.WriteString(";t=")
	writeInt(b, d.ResetSeconds())
	if pk != "" {
		b.WriteString(";pk=")
		b.WriteString(pk)
	}
}

// HeaderOptions says how AppendHeaders writes a decision.
type HeaderOptions struct {
	// Reset is the format of X-RateLimit-Reset.
	Reset ResetFormat
	// PartitionKey is the pk parameter of RateLimit-Policy and RateLimit
	// (Partitioner.Key); "" leaves it out.
	PartitionKey string
	// Shadow: the decision is not enforced, so a denial gets no Retry-After
	// (the request goes on; nothing should make its client wait).
	Shadow bool
}

// AppendHeaders appends the response headers for d to dst (name, value;
// the proxy-wasm header pair): X-RateLimit-Limit, -Remaining and -Reset,
// RateLimit-Policy and RateLimit, and Retry-After on an enforced denial. A
// degraded decision (fail mode), or one not made by Decide, knows no budget
// and gets only Retry-After when it denies. The values are parts of one
// string, built in one allocation: inside the wasm VM an allocation costs
// more than formatting the numbers.
func (d *Decision) AppendHeaders(dst [][2]string, o HeaderOptions) [][2]string {
	if !d.Degraded() && d.policy != nil {
		var b strings.Builder
		b.Grow(d.headerValuesSize(o.PartitionKey))
		var ends [5]int
		writeInt(&b, d.Limit.Requests)
		ends[0] = b.Len()
		writeInt(&b, d.Remaining)
		ends[1] = b.Len()
		if o.Reset == ResetTimestamp {
			b.WriteString(FormatTimestamp(d.ResetAt().Add(time.Millisecond - 1))) // rounded up to the millisecond
		} else {
			writeInt(&b, d.ResetSeconds())
		}
		ends[2] = b.Len()
		d.policy.writePolicyField(&b, o.PartitionKey)
		ends[3] = b.Len()
		d.writeRateLimitField(&b, o.PartitionKey)
		ends[4] = b.Len()
		values := b.String()
		dst = append(dst,
			[2]string{HeaderLimit, values[:ends[0]]},
			[2]string{HeaderRemaining, values[ends[0]:ends[1]]},
			[2]string{HeaderReset, values[ends[1]:ends[2]]},
			[2]string{HeaderPolicy, values[ends[2]:ends[3]]},
			[2]string{HeaderRateLimit, values[ends[3]:ends[4]]},
		)
	}
	if !d.Allowed && !o.Shadow {
		dst = append(dst, [2]string{HeaderRetryAfter, strconv.FormatInt(d.RetryAfterSeconds(), 10)})
	}
	return dst
}

// headerValuesSize bounds the length of AppendHeaders' values, so that
// they take one allocation: three numbers or a timestamp, the policy field
// (its items, each with a partition key) and the RateLimit field.
func (d *Decision) headerValuesSize(pk string) int {
	const number, timestamp, params = 20, len("2006-01-02T15:04:05.000Z"), len(`"";r=;t=;pk=`)
	policy := len(d.policy.field) + len(d.policy.rules)*len(";pk=")*2 + len(d.policy.rules)*len(pk)
	return 2*number + max(number, timestamp) + policy + len(d.Limit.Name) + params + 2*number + len(pk)
}

// PolicyName is the name of the limit that decided d (the tightest: for a
// denial, the one that refused), as RateLimit names it; "" when the
// decision knows no limit (fail mode, a service that did not answer).
func (d *Decision) PolicyName() string {
	if d.Degraded() || d.policy == nil {
		return ""
	}
	return d.Limit.Name
}
