package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/config"
)

// TestDecodeFollowsEncodingJSON pins the decoding rules the hand-written
// decoder keeps from encoding/json, so that a configuration means what it
// meant before it replaced encoding/json.
func TestDecodeFollowsEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		check     func(*config.Config) bool
	}{
		{"names match case-insensitively", `{"Routes":[{"PREFIX":"/a","Public":true}]}`,
			func(c *config.Config) bool { r, ok := c.Routes.Match("GET", "/a"); return ok && r.Public }},
		{"null leaves the default", `{"routes":[{"prefix":"/a","public":true}],"jwt":null,"health":null,"log":{"errors_per_second":null}}`,
			func(c *config.Config) bool {
				return c.JWT == nil && c.HealthPath == "/health" && c.ErrorLinesPerSecond == config.DefaultErrorLines
			}},
		{"a repeated member decodes again", `{"routes":[{"prefix":"/a"}],"routes":[{"prefix":"/b","public":true}]}`,
			func(c *config.Config) bool {
				_, a := c.Routes.Match("GET", "/a")
				_, b := c.Routes.Match("GET", "/b")
				return !a && b
			}},
		{"escapes in names and values", `{"r\u006futes":[{"prefix":"\/a\u00e9","public":true}]}`,
			func(c *config.Config) bool { _, ok := c.Routes.Match("GET", "/aé"); return ok }},
		{"negative zero is an integer", withMember(`"log":{"errors_per_second":-0}`),
			func(c *config.Config) bool { return c.ErrorLinesPerSecond == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.doc), testEnv)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("decoded %+v", c)
			}
		})
	}
}

func TestDecodeRefusals(t *testing.T) {
	plans := func(byPlan string) string {
		return withMember(`"rate_limit":{"plans":{"claim":"tier","by_plan":` + byPlan + `}}`)
	}
	for _, tc := range []struct{ name, doc, field, problem string }{
		{"an exponent is not an integer", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":1e1}`), "jwt.leeway_seconds", "must be an integer, not number 1e1"},
		{"an integer beyond int64", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"max_token_bytes":99999999999999999999}`), "jwt.max_token_bytes", "must be an integer, not number 99999999999999999999"},
		{"an unknown field in a plan's limit", plans(`{"pro":[{"requests":1,"window_seconds":1},{"reqs":2}]}`), "rate_limit.plans.by_plan.pro[1].reqs", "unknown field"},
		{"a plan's limits not an array", plans(`{"pro":{"requests":1}}`), "rate_limit.plans.by_plan.pro", "must be an array, not object"},
		{"a route's limit not an object", withRoutes(`[{"prefix":"/a","rate_limit":[5]}]`), "routes[0].rate_limit[0]", "must be an object, not number"},
		{"an enforce flag as a number", withRoutes(`[{"prefix":"/a","enforce":{"jwt":0}}]`), "routes[0].enforce.jwt", "must be a boolean, not number"},
		{"invalid UTF-8", "{\"routes\":[{\"prefix\":\"/\xff\"}]}", "", "not valid JSON (at byte 23)"},
		{"a control character in a string", "{\"routes\":[{\"prefix\":\"/\n\"}]}", "", "not valid JSON (at byte 23)"},
		{"null as the document", `null`, "routes", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.doc), testEnv)
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *config.FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Problem, tc.problem) {
				t.Errorf("error %q, want field %q saying %q", err, tc.field, tc.problem)
			}
		})
	}
}
