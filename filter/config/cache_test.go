package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/config"
)

func TestCacheOffByDefault(t *testing.T) {
	c := mustParse(t, minimal)
	if c.Cache != nil {
		t.Errorf("caching is on without a cache block")
	}
	if r, _ := c.Routes.Match("GET", "/api"); r.Cache != nil {
		t.Errorf("a rule has a cache policy without a cache block: %+v", r.Cache)
	}
}

func TestCacheDefaults(t *testing.T) {
	c := mustParse(t, withMember(`"cache":{}`))
	want := &cache.Config{
		Cluster: "cache", Authority: "portcullis-cache", Timeout: 50 * time.Millisecond,
		MaxBodyBytes: 1 << 20, Statuses: map[int]time.Duration{200: time.Minute},
		FillWait: 2 * time.Second, FillLockSlots: 4096,
		LocalIndexTTL: time.Second, LocalIndexSlots: 4096,
		LocalEntries: 256, LocalMaxEntryBytes: 64 << 10, LocalBytes: 4 << 20,
	}
	if !reflect.DeepEqual(c.Cache, want) {
		t.Errorf("Cache = %+v, want %+v", c.Cache, want)
	}
	if r, _ := c.Routes.Match("GET", "/api"); r.Cache == nil || *r.Cache != (cache.RoutePolicy{}) {
		t.Errorf("the rule's policy = %+v, want caching on with the defaults", r.Cache)
	}
}

func TestCacheCompiles(t *testing.T) {
	c := mustParse(t, `{
	  "jwt": {"secrets": [{"env": "JWT_SECRET"}]},
	  "routes": [{"prefix": "/off", "cache": {"enabled": false}},
	             {"prefix": "/short", "cache": {"ttl_seconds": 5}},
	             {"prefix": "/shared", "public": true, "cache": {"enabled": true, "public": true, "ttl_seconds": 3600}},
	             {"prefix": "/stale", "cache": {"stale_while_revalidate_seconds": 30, "stale_if_error_seconds": 600}},
	             {"prefix": "/api"}],
	  "cache": {"cluster": "cache_redis", "authority": "cache.internal:8080", "timeout_ms": 20,
	            "max_body_bytes": 65536, "statuses": {"200": 30, "404": 10, "301": 86400},
	            "fill_wait_ms": 500, "fill_lock_slots": 128,
	            "local_index_ttl_ms": 250, "local_index_slots": 512, "local_entries": 64,
	            "local_max_entry_bytes": 8192, "local_bytes": 262144}
	}`)
	want := &cache.Config{
		Cluster: "cache_redis", Authority: "cache.internal:8080", Timeout: 20 * time.Millisecond,
		MaxBodyBytes: 65536, Statuses: map[int]time.Duration{200: 30 * time.Second, 404: 10 * time.Second, 301: 24 * time.Hour},
		FillWait: 500 * time.Millisecond, FillLockSlots: 128,
		LocalIndexTTL: 250 * time.Millisecond, LocalIndexSlots: 512,
		LocalEntries: 64, LocalMaxEntryBytes: 8192, LocalBytes: 256 << 10,
	}
	if !reflect.DeepEqual(c.Cache, want) {
		t.Errorf("Cache = %+v, want %+v", c.Cache, want)
	}
	for path, want := range map[string]*cache.RoutePolicy{
		"/off":    nil,
		"/short":  {TTL: 5 * time.Second},
		"/shared": {TTL: time.Hour, Public: true},
		"/stale":  {StaleWhileRevalidate: 30 * time.Second, StaleIfError: 10 * time.Minute},
		"/api":    {},
	} {
		r, _ := c.Routes.Match("GET", path)
		if !reflect.DeepEqual(r.Cache, want) {
			t.Errorf("%s: policy %+v, want %+v", path, r.Cache, want)
		}
	}
}

func TestCacheDefaultTTL(t *testing.T) {
	c := mustParse(t, withMember(`"cache":{"default_ttl_seconds":300}`))
	if got := c.Cache.Statuses; !reflect.DeepEqual(got, map[int]time.Duration{200: 5 * time.Minute}) {
		t.Errorf("Statuses = %v, want 200 for 300 s", got)
	}
}

// TestCacheNoHeuristic: 0 keeps the status cacheable with no heuristic
// lifetime (only explicit freshness or a validator makes it reusable).
func TestCacheNoHeuristic(t *testing.T) {
	c := mustParse(t, withMember(`"cache":{"default_ttl_seconds":0}`))
	if got := c.Cache.Statuses; !reflect.DeepEqual(got, map[int]time.Duration{200: 0}) {
		t.Errorf("Statuses = %v, want 200 with no heuristic lifetime", got)
	}
	c = mustParse(t, withMember(`"cache":{"statuses":{"200":0,"404":30}}`))
	if got := c.Cache.Statuses; !reflect.DeepEqual(got, map[int]time.Duration{200: 0, 404: 30 * time.Second}) {
		t.Errorf("Statuses = %v", got)
	}
}

func withCache(block string) string { return withMember(`"cache":` + block) }

func withCachedRoutes(routes string) string {
	return `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"cache":{},"routes":` + routes + `}`
}

func TestCacheInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, doc, field, problem string
	}{
		{"route block without the top-level one", withRoutes(`[{"prefix":"/a"},{"prefix":"/b","cache":{"enabled":true}}]`), "routes[1].cache", "requires the top-level cache block"},
		{"unknown field", withCache(`{"ttl":5}`), "cache.ttl", "unknown field"},
		{"stale-while-revalidate negative", withCachedRoutes(`[{"prefix":"/a","cache":{"stale_while_revalidate_seconds":-1}}]`), "routes[0].cache.stale_while_revalidate_seconds", "between 0 and 86400, got -1"},
		{"stale-if-error over a day", withCachedRoutes(`[{"prefix":"/a","cache":{"stale_if_error_seconds":86401}}]`), "routes[0].cache.stale_if_error_seconds", "between 0 and 86400, got 86401"},
		{"stale-if-error not a number", withCachedRoutes(`[{"prefix":"/a","cache":{"stale_if_error_seconds":"1m"}}]`), "routes[0].cache.stale_if_error_seconds", "must be an integer"},
		{"stale window on a disabled rule", withCachedRoutes(`[{"prefix":"/a","cache":{"enabled":false,"stale_while_revalidate_seconds":5}}]`), "routes[0].cache.stale_while_revalidate_seconds", "has no effect with enabled false"},
		{"unknown route field", withCachedRoutes(`[{"prefix":"/a","cache":{"ttl":5}}]`), "routes[0].cache.ttl", "unknown field"},
		{"cache not an object", withCache(`true`), "cache", "must be an object"},
		{"timeout as a string", withCache(`{"timeout_ms":"50"}`), "cache.timeout_ms", "must be an integer"},
		{"fractional TTL", withCachedRoutes(`[{"prefix":"/a","cache":{"ttl_seconds":1.5}}]`), "routes[0].cache.ttl_seconds", "must be an integer"},
		{"enabled as a string", withCachedRoutes(`[{"prefix":"/a","cache":{"enabled":"no"}}]`), "routes[0].cache.enabled", "must be a boolean"},
		{"cluster not a name", withCache(`{"cluster":"a b"}`), "cache.cluster", "not an Envoy cluster name"},
		{"authority with a path", withCache(`{"authority":"cache/x"}`), "cache.authority", "not a host[:port]"},
		{"authority with a newline", withCache(`{"authority":"cache\nx"}`), "cache.authority", "not a host[:port]"},
		{"timeout 0", withCache(`{"timeout_ms":0}`), "cache.timeout_ms", "between 1 and 5000, got 0"},
		{"timeout negative", withCache(`{"timeout_ms":-1}`), "cache.timeout_ms", "between 1 and 5000"},
		{"timeout absurd", withCache(`{"timeout_ms":60000}`), "cache.timeout_ms", "between 1 and 5000"},
		{"max body 0", withCache(`{"max_body_bytes":0}`), "cache.max_body_bytes", "between 1 and 16777216"},
		{"max body absurd", withCache(`{"max_body_bytes":1073741824}`), "cache.max_body_bytes", "between 1 and 16777216"},
		{"default TTL negative", withCache(`{"default_ttl_seconds":-1}`), "cache.default_ttl_seconds", "between 0 and 31536000"},
		{"default TTL absurd", withCache(`{"default_ttl_seconds":99999999999}`), "cache.default_ttl_seconds", "between 0 and 31536000"},
		{"fill wait 0", withCache(`{"fill_wait_ms":0}`), "cache.fill_wait_ms", "between 1 and 10000"},
		{"fill wait absurd", withCache(`{"fill_wait_ms":60000}`), "cache.fill_wait_ms", "between 1 and 10000"},
		{"lock slots 0", withCache(`{"fill_lock_slots":0}`), "cache.fill_lock_slots", "between 1 and 1048576"},
		{"lock slots absurd", withCache(`{"fill_lock_slots":100000000}`), "cache.fill_lock_slots", "between 1 and 1048576"},
		{"local index TTL 0", withCache(`{"local_index_ttl_ms":0}`), "cache.local_index_ttl_ms", "between 1 and 60000, got 0"},
		{"local index TTL absurd", withCache(`{"local_index_ttl_ms":3600000}`), "cache.local_index_ttl_ms", "between 1 and 60000"},
		{"local index slots 0", withCache(`{"local_index_slots":0}`), "cache.local_index_slots", "between 1 and 1048576"},
		{"local entries 0", withCache(`{"local_entries":0}`), "cache.local_entries", "between 1 and 65536"},
		{"local entry bytes absurd", withCache(`{"local_max_entry_bytes":1073741824}`), "cache.local_max_entry_bytes", "between 1 and"},
		{"local bytes absurd", withCache(`{"local_bytes":1073741824}`), "cache.local_bytes", "between 1 and 268435456"},
		{"local entry over the budget", withCache(`{"local_bytes":1024}`), "cache.local_max_entry_bytes", "more than cache.local_bytes"},
		{"statuses empty", withCache(`{"statuses":{}}`), "cache.statuses", "at least one status"},
		{"statuses not an object", withCache(`{"statuses":[200]}`), "cache.statuses", "must be an object"},
		{"status not a number", withCache(`{"statuses":{"ok":60}}`), "cache.statuses.ok", "not a status code"},
		{"status 1xx", withCache(`{"statuses":{"101":60}}`), "cache.statuses.101", "not a status code from 200 to 599"},
		{"status 600", withCache(`{"statuses":{"600":60}}`), "cache.statuses.600", "not a status code"},
		{"status with a sign", withCache(`{"statuses":{"+200":60}}`), "cache.statuses.+200", "not a status code"},
		{"status 206", withCache(`{"statuses":{"200":60,"206":60}}`), "cache.statuses.206", "cannot be replayed"},
		{"status 304", withCache(`{"statuses":{"304":60}}`), "cache.statuses.304", "cannot be replayed"},
		{"status TTL too long", withCache(`{"statuses":{"200":60,"404":31536001}}`), "cache.statuses.404", "between 0 and 31536000 seconds, got 31536001"},
		{"status TTL negative", withCache(`{"statuses":{"404":-5}}`), "cache.statuses.404", "between 0 and"},
		{"status TTL as a string", withCache(`{"statuses":{"404":"10"}}`), "cache.statuses.404", "must be an integer"},
		{"default TTL and statuses.200", withCache(`{"default_ttl_seconds":60,"statuses":{"200":30}}`), "cache.default_ttl_seconds", "set it in one place"},
		{"default TTL without 200", withCache(`{"default_ttl_seconds":60,"statuses":{"404":30}}`), "cache.default_ttl_seconds", "does not list"},
		{"route TTL 0", withCachedRoutes(`[{"prefix":"/a","cache":{"ttl_seconds":0}}]`), "routes[0].cache.ttl_seconds", "between 1 and 31536000, got 0"},
		{"route TTL negative", withCachedRoutes(`[{"prefix":"/a"},{"prefix":"/b","cache":{"ttl_seconds":-1}}]`), "routes[1].cache.ttl_seconds", "between 1 and"},
		{"route TTL absurd", withCachedRoutes(`[{"prefix":"/a","cache":{"ttl_seconds":40000000}}]`), "routes[0].cache.ttl_seconds", "between 1 and"},
		{"route TTL without 200", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"cache":{"statuses":{"404":5}},"routes":[{"prefix":"/a","cache":{"ttl_seconds":5}}]}`, "routes[0].cache.ttl_seconds", "does not list"},
		{"disabled with a TTL", withCachedRoutes(`[{"prefix":"/a","cache":{"enabled":false,"ttl_seconds":5}}]`), "routes[0].cache.ttl_seconds", "no effect with enabled false"},
		{"disabled and public", withCachedRoutes(`[{"prefix":"/a","cache":{"enabled":false,"public":true}}]`), "routes[0].cache.public", "no effect with enabled false"},

		{"purge not an object", withCache(`{"purge":true}`), "cache.purge", "must be an object"},
		{"purge unknown field", withCache(`{"purge":{"path":"/p","secret":{"env":"JWT_SECRET_2"},"token":"x"}}`), "cache.purge.token", "unknown field"},
		{"purge without a path", withCache(`{"purge":{"secret":{"env":"JWT_SECRET_2"}}}`), "cache.purge.path", "required"},
		{"purge path relative", withCache(`{"purge":{"path":"p","secret":{"env":"JWT_SECRET_2"}}}`), "cache.purge.path", "required"},
		{"purge path with a query", withCache(`{"purge":{"path":"/p?x","secret":{"env":"JWT_SECRET_2"}}}`), "cache.purge.path", "plain path"},
		{"purge path with dot segments", withCache(`{"purge":{"path":"/a/../p","secret":{"env":"JWT_SECRET_2"}}}`), "cache.purge.path", "plain path"},
		{"purge path is the health path", withCache(`{"purge":{"path":"/health","secret":{"env":"JWT_SECRET_2"}}}`), "cache.purge.path", "health path"},
		{"purge without a secret", withCache(`{"purge":{"path":"/p"}}`), "cache.purge.secret", "required"},
		{"purge secret unset", withCache(`{"purge":{"path":"/p","secret":{"env":"NOPE"}}}`), "cache.purge.secret.env", "not set"},
		{"purge secret too short", withCache(`{"purge":{"path":"/p","secret":{"env":"SHORT"}}}`), "cache.purge.secret.env", "at least 32"},
		{"purge secret with a kid", withCache(`{"purge":{"path":"/p","secret":{"env":"JWT_SECRET_2","kid":"a"}}}`), "cache.purge.secret.kid", "no key id"},
		{"purge secret is the JWT secret", withCache(`{"purge":{"path":"/p","secret":{"env":"JWT_SECRET"}}}`), "cache.purge.secret.env", "must not be a JWT secret"},
		{"purge secret is the JWT secret, encoded", withCache(`{"purge":{"path":"/p","secret":{"env":"JWT_SECRET_B64","encoding":"base64"}}}`), "cache.purge.secret.env", "must not be a JWT secret"},
		{"tag header not a name", withCache(`{"purge":{"path":"/p","secret":{"env":"JWT_SECRET_2"},"tag_header":"a b"}}`), "cache.purge.tag_header", "not a response field"},
		{"tag header the cache reads", withCache(`{"purge":{"path":"/p","secret":{"env":"JWT_SECRET_2"},"tag_header":"Cache-Control"}}`), "cache.purge.tag_header", "not a response field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.doc), testEnv)
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Problem, tc.problem) {
				t.Fatalf("error %q, want field %q with %q", err, tc.field, tc.problem)
			}
		})
	}
}

func TestCachePurgeCompiles(t *testing.T) {
	c := mustParse(t, withCache(`{"purge":{"path":"/_purge","secret":{"env":"JWT_SECRET_2"},"tag_header":"Cache-Tag"}}`))
	p := c.Cache.Purge
	if p == nil || p.Path != "/_purge" || p.TagHeader != "cache-tag" {
		t.Fatalf("Purge = %+v", p)
	}
	if p.Authorize("Bearer "+secretLong) != cache.PurgeAllowed || p.Authorize("Bearer "+secret32) != cache.PurgeWrongSecret {
		t.Error("the compiled secret is not the variable's")
	}
	if d := mustParse(t, withCache(`{"purge":{"path":"/_purge","secret":{"env":"JWT_SECRET_2"}}}`)); d.Cache.Purge.TagHeader != "surrogate-key" {
		t.Errorf("default tag header %q", d.Cache.Purge.TagHeader)
	}
	if mustParse(t, withCache(`{}`)).Cache.Purge != nil {
		t.Error("purge on without its block")
	}
}
