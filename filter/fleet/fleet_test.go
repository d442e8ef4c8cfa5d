package fleet

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestRequestBody(t *testing.T) {
	for _, tc := range []struct {
		cost, wantAddend int64
		addendSent       bool
	}{
		{cost: 1}, {cost: 0}, // one hit: the service's default, not sent
		{cost: 5, wantAddend: 5, addendSent: true},
	} {
		body := RequestBody(nil, "portcullis", KeyEntry, "al\"ice\n<x>", "api", tc.cost)
		var req struct {
			Domain      string `json:"domain"`
			Descriptors []struct {
				Entries []struct{ Key, Value string } `json:"entries"`
			} `json:"descriptors"`
			HitsAddend *int64 `json:"hitsAddend"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("cost %d: body is not JSON: %v\n%s", tc.cost, err, body)
		}
		if req.Domain != "portcullis" || len(req.Descriptors) != 1 {
			t.Fatalf("cost %d: request = %+v", tc.cost, req)
		}
		e := req.Descriptors[0].Entries
		if len(e) != 2 || e[0].Key != KeyEntry || e[0].Value != "al\"ice\n<x>" || e[1].Key != RouteEntry || e[1].Value != "api" {
			t.Fatalf("cost %d: entries = %+v", tc.cost, e)
		}
		if (req.HitsAddend != nil) != tc.addendSent || tc.addendSent && *req.HitsAddend != tc.wantAddend {
			t.Errorf("cost %d: hitsAddend %v in %s, want sent %v = %d", tc.cost, req.HitsAddend, body, tc.addendSent, tc.wantAddend)
		}
	}
}

// The answers below are what envoyproxy/ratelimit (the pinned build) wrote
// for a descriptor config of 3 per minute, captured with curl.
func TestParseAnswer(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   Answer
	}{
		{"first of three", 200, `{"overallCode":"OK", "statuses":[{"code":"OK", "currentLimit":{"name":"per-key-route", "requestsPerUnit":3, "unit":"MINUTE"}, "limitRemaining":2, "durationUntilReset":"14s"}]}`,
			Answer{Limited: true, Limit: 3, Window: time.Minute, Remaining: 2, Reset: 14 * time.Second}},
		{"last of three: remaining omitted", 200, `{"overallCode":"OK", "statuses":[{"code":"OK", "currentLimit":{"name":"per-key-route", "requestsPerUnit":3, "unit":"MINUTE"}, "durationUntilReset":"14s"}]}`,
			Answer{Limited: true, Limit: 3, Window: time.Minute, Reset: 14 * time.Second}},
		{"over", 429, `{"overallCode":"OVER_LIMIT", "statuses":[{"code":"OVER_LIMIT", "currentLimit":{"name":"per-key-route", "requestsPerUnit":3, "unit":"MINUTE"}, "durationUntilReset":"14s"}]}`,
			Answer{Over: true, Limited: true, Limit: 3, Window: time.Minute, Reset: 14 * time.Second}},
		{"no rule matched", 200, `{"overallCode":"OK", "statuses":[{"code":"OK"}]}`, Answer{}},
		{"fractional reset, unnamed", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":10,"unit":"SECOND"},"limitRemaining":"9","durationUntilReset":"0.250s"}]}`,
			Answer{Limited: true, Limit: 10, Window: time.Second, Remaining: 9, Reset: 250 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAnswer(tt.status, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseAnswerRefuses(t *testing.T) {
	ok := `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"14s"}]}`
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"redis down: 400 text", 400, "Bad Request\n"},
		{"500 unknown", 500, `{"overallCode":"UNKNOWN"}`},
		{"status and code disagree", 429, ok},
		{"OK with 429 status", 200, `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"}}]}`},
		{"over without status", 429, `{"overallCode":"OVER_LIMIT"}`},
		{"over without limit", 429, `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT"}]}`},
		{"status code differs", 200, `{"overallCode":"OK","statuses":[{"code":"OVER_LIMIT"}]}`},
		{"unknown unit", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"FORTNIGHT"}}]}`},
		{"negative limit", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":-3,"unit":"MINUTE"}}]}`},
		{"fractional limit", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":2.5,"unit":"MINUTE"}}]}`},
		{"reset not a duration", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":14}]}`},
		{"negative reset", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"-1s"}]}`},
		{"NaN reset", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"NaNs"}]}`},
		{"reset past the window", 200, `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"durationUntilReset":"61s"}]}`},
		{"truncated", 200, ok[:40]},
		{"empty", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAnswer(tt.status, []byte(tt.body))
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("ParseAnswer = %+v, %v; want ErrBadAnswer", a, err)
			}
		})
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(200, []byte(`{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":3,"unit":"MINUTE"},"limitRemaining":2,"durationUntilReset":"14s"}]}`))
	f.Add(429, []byte(`{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":3,"unit":"HOUR"},"durationUntilReset":"1.5s"}]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		a, err := ParseAnswer(status, body)
		if err != nil {
			return
		}
		if a.Limit < 0 || a.Remaining < 0 || a.Reset < 0 || a.Reset > a.Window || (a.Limited && a.Window <= 0) || (a.Over && !a.Limited) {
			t.Fatalf("accepted an inconsistent answer %+v from %q", a, body)
		}
	})
}
