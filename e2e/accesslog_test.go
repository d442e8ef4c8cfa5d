package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/e2e/harness"
	"github.com/portcullis/portcullis/e2e/scenarios"
	"github.com/portcullis/portcullis/internal/redistest"
)

// accessLine is one line of the shipped envoy.yaml's JSON access log, with
// the plugin's decisions decoded from its "portcullis" field.
type accessLine struct {
	Status     int    `json:"status"`
	Path       string `json:"path"`
	RequestID  string `json:"request_id"`
	Portcullis string `json:"portcullis"`
	decisions  map[string]any
}

// oneOf is an expected decision that may take any of these values.
type oneOf []any

// accessLines reads the access log lines in gw's Envoy output, by request id.
func accessLines(t *testing.T, gw *harness.Gateway) map[string]accessLine {
	t.Helper()
	out := map[string]accessLine{}
	for _, line := range strings.Split(gw.HostLogs(), "\n") {
		var l accessLine
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &l) != nil || l.RequestID == "" {
			continue
		}
		if err := json.Unmarshal([]byte(l.Portcullis), &l.decisions); err != nil {
			t.Errorf("access line %s: the portcullis field is not a JSON object: %v", line, err)
		}
		out[l.RequestID] = l
	}
	return out
}

// TestEnvoyAccessLog: every request's access log line carries the gateway's
// decisions (route, key, jwt outcome, rate limit, fleet call, cache, reply),
// for every refusal class and the fleet and cache paths; and the log never
// holds a token, the secret, a query string or an Authorization header.
func TestEnvoyAccessLog(t *testing.T) {
	t.Parallel()
	envoy := harness.NewEnvoy(t)
	local := envoy.Start(t, harness.Options{PluginConfig: withRateLimit(t, map[string]any{
		"default": []any{map[string]any{"requests": 3, "window_seconds": 3600}},
	}, true)})
	svc := harness.StartRateLimitService(t, redistest.Start(t).Addr, harness.RepoRoot(t))
	fleet := envoy.Start(t, harness.Options{PluginConfig: scenarios.FleetConfig(t, "allow", "grpc"),
		Clusters: map[string]string{harness.RateLimitCluster: harness.H2C(svc.GRPCAddr)}})

	token := scenarios.Token(harness.TestSecret, "alice", nil)
	type sent struct {
		gw     *harness.Gateway
		status int
		want   map[string]any // decisions that must be in the line
	}
	var requests []sent
	send := func(gw *harness.Gateway, r scenarios.Request, status int, want map[string]any) {
		resp := scenarios.Send(t, gw, r)
		if resp.Status != status {
			t.Fatalf("%s %s: want %d, got:\n%s", r.Method, r.Path, status, resp)
		}
		want["request_id"] = resp.Header.Get("x-request-id")
		requests = append(requests, sent{gw, status, want})
	}
	authorized := scenarios.Bearer(token)
	send(local, scenarios.Request{Path: "/api/things?secret=1", Header: authorized}, 200,
		map[string]any{"route": "api", "key": "alice", "jwt": "verified", "ratelimit": "allowed", "ratelimit_source": "local",
			"ratelimit_policy": "default", "ratelimit_remaining": 2.0, "cache": "MISS", "cache_fill": "stored"})
	time.Sleep(300 * time.Millisecond) // the fill is written after the response
	// The token cache is per VM (worker): "cached" on the worker that saw the
	// token, "verified" on the other.
	send(local, scenarios.Request{Path: "/api/things?secret=1", Header: authorized}, 200,
		map[string]any{"key": "alice", "jwt": oneOf{"cached", "verified"}, "cache": "HIT", "ratelimit_remaining": 1.0})
	send(local, scenarios.Request{Method: "POST", Path: "/api/things", Body: "x", Header: scenarios.With(authorized, "Content-Type", "text/plain")}, 415,
		map[string]any{"key": "alice", "reply": "unsupported_media_type"})
	send(local, scenarios.Request{Path: "/api/things", Header: authorized}, 200, map[string]any{"ratelimit_remaining": 0.0})
	send(local, scenarios.Request{Path: "/api/things", Header: authorized}, 429,
		map[string]any{"ratelimit": "denied", "reply": "rate_limited"})
	send(local, scenarios.Request{Path: "/nope?token=" + token}, 404, map[string]any{"reply": "route_not_found"})
	refused := scenarios.RefusedAuthorizations(harness.TestSecret)
	for class, authorization := range refused {
		h := map[string][]string{}
		if authorization != "" {
			h["Authorization"] = []string{authorization}
		}
		resp := scenarios.Send(t, local, scenarios.Request{Path: "/api/things?q=" + class, Header: h})
		if resp.Status != http.StatusUnauthorized {
			t.Fatalf("%s: want 401, got:\n%s", class, resp)
		}
		requests = append(requests, sent{local, 401, map[string]any{"request_id": resp.Header.Get("x-request-id"), "route": "api"}})
	}
	send(fleet, scenarios.Request{Path: "/api/things", Header: authorized}, 200,
		map[string]any{"key": "alice", "fleet_call": "made", "ratelimit_source": "fleet", "ratelimit": "allowed"})

	time.Sleep(500 * time.Millisecond) // Envoy writes the access log as each stream ends
	lines := map[*harness.Gateway]map[string]accessLine{local: accessLines(t, local), fleet: accessLines(t, fleet)}
	for _, r := range requests {
		id := r.want["request_id"].(string)
		l, ok := lines[r.gw][id]
		if !ok {
			t.Errorf("no access log line for request %s (%d)", id, r.status)
			continue
		}
		if l.Status != r.status || strings.Contains(l.Path, "?") {
			t.Errorf("line %+v: want status %d and a path without query", l, r.status)
		}
		for k, v := range r.want {
			if alternatives, ok := v.(oneOf); ok {
				if !slices.Contains(alternatives, l.decisions[k]) {
					t.Errorf("request %s (%d): %s = %v, want one of %v", id, r.status, k, l.decisions[k], alternatives)
				}
				continue
			}
			if k != "request_id" && l.decisions[k] != v {
				t.Errorf("request %s (%d): %s = %v, want %v (decisions %v)", id, r.status, k, l.decisions[k], v, l.decisions)
			}
		}
		if r.status == 401 {
			if reply, _ := l.decisions["reply"].(string); !strings.HasPrefix(reply, "jwt_") || l.decisions["jwt"] != reply {
				t.Errorf("refused token: decisions %v, want the jwt refusal reason as jwt and reply", l.decisions)
			}
		}
	}
	for _, gw := range []*harness.Gateway{local, fleet} {
		logs := gw.HostLogs()
		secrets := []string{harness.TestSecret, token, "secret=1", "token=", "Bearer "}
		for _, a := range refused {
			if a != "" {
				secrets = append(secrets, strings.TrimPrefix(a, "Bearer "))
			}
		}
		for _, s := range secrets {
			if i := strings.Index(logs, s); i >= 0 {
				t.Errorf("Envoy's log holds %.40q: …%s…", s, logs[max(i-80, 0):min(i+40, len(logs))])
			}
		}
	}
}
