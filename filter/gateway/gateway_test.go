package gateway_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/httperr"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const baseConfig = `{
  "jwt": {"secrets": [{"env": "SECRET"}], "issuer": "test", "audiences": ["api"]},
  "identity": {"claim_headers": {"email": "x-user-email"}},
  "routes": [
    {"name": "public", "prefix": "/public", "methods": ["GET"], "public": true},
    {"name": "api", "prefix": "/api"}
  ]
}`

func TestDecide(t *testing.T) {
	g := newGateway(t, baseConfig, "")
	tests := []struct {
		name      string
		req       gateway.Request
		kind      gateway.Kind
		rule      string // "" when no rule was reached
		reason    gateway.Reason
		status    int
		challenge string // www-authenticate of a refusal, when it has one
		set       [][2]string
		tenant    string
		remove    []string // the managed headers the request carries
	}{
		{name: "health", req: get("/health", ""), kind: gateway.Health},
		{name: "health is GET and HEAD only", req: request("POST", "/health", ""),
			kind: gateway.Reject, reason: gateway.ReasonRouteNotFound, status: 404},
		{name: "dot segment", req: get("/api/../x", ""), kind: gateway.Reject, reason: gateway.ReasonBadPath, status: 400},
		{name: "encoded slash", req: get("/api%2Fx", ""), kind: gateway.Reject, reason: gateway.ReasonBadPath, status: 400},
		{name: "no rule", req: get("/other", ""), kind: gateway.Reject, reason: gateway.ReasonRouteNotFound, status: 404},
		{name: "method the public rule does not cover", req: request("DELETE", "/public/x", ""),
			kind: gateway.Reject, reason: gateway.ReasonRouteNotFound, status: 404},
		{name: "public", req: get("/public/x?q=1", ""), kind: gateway.Forward, rule: "public"},
		{name: "public with spoofed identity", req: get("/public/x", "Bearer x", "x-user-email", "e@example.com", "x-api-key", "admin"),
			kind: gateway.Forward, rule: "public", remove: []string{"x-api-key", "x-user-email", "authorization"}},
		{name: "missing token", req: get("/api/x", ""), kind: gateway.Reject, rule: "api",
			reason: gateway.JWTReason(jwt.ReasonMissing), status: 401, challenge: `Bearer realm="portcullis"`},
		{name: "not bearer", req: get("/api/x", "Basic YTpi"), kind: gateway.Reject, rule: "api",
			reason: gateway.JWTReason(jwt.ReasonMissing), status: 401},
		{name: "bad signature", req: get("/api/x", "Bearer "+jwttest.HS256([]byte("another-secret-0123456789abcdefgh"), jwttest.Claims{"sub": "a", "exp": now.Unix() + 60})),
			kind: gateway.Reject, rule: "api", reason: gateway.JWTReason(jwt.ReasonBadSignature), status: 401,
			challenge: `Bearer realm="portcullis", error="invalid_token", error_description="invalid signature"`},
		{name: "expired", req: get("/api/x", bearer("alice", jwttest.Claims{"exp": now.Unix() - 3600})),
			kind: gateway.Reject, rule: "api", reason: gateway.JWTReason(jwt.ReasonExpired), status: 401},
		{name: "key claim not a header value", req: get("/api/x", bearer("al\nice", nil)),
			kind: gateway.Reject, rule: "api", reason: gateway.JWTReason(jwt.ReasonMissingKeyClaim), status: 401},
		{name: "verified", req: get("/api/x", bearer("alice", jwttest.Claims{"email": "a@example.com"})),
			kind: gateway.Forward, rule: "api", set: [][2]string{{"x-api-key", "alice"}, {"x-user-email", "a@example.com"}}, tenant: "alice",
			remove: []string{"authorization"}},
		{name: "verified, claim header absent, spoofed one sent", req: get("/api/x", bearer("bob", nil), "x-user-email", "admin@example.com"),
			kind: gateway.Forward, rule: "api", set: [][2]string{{"x-api-key", "bob"}}, tenant: "bob", remove: []string{"x-user-email", "authorization"}},
		{name: "body of another media type", req: withBody(request("POST", "/api/x", bearer("alice", nil), "content-type", "text/plain")),
			kind: gateway.Reject, rule: "api", reason: gateway.ReasonUnsupportedMediaType, status: 415, tenant: "alice"},
		{name: "JSON body", req: withBody(request("POST", "/api/x", bearer("alice", nil), "content-type", "application/json; charset=utf-8")),
			kind: gateway.Forward, rule: "api", set: [][2]string{{"x-api-key", "alice"}}, tenant: "alice", remove: []string{"authorization"}},
		{name: "POST without a body", req: request("POST", "/api/x", bearer("alice", nil)),
			kind: gateway.Forward, rule: "api", set: [][2]string{{"x-api-key", "alice"}}, tenant: "alice", remove: []string{"authorization"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := g.Decide(tt.req, now)
			if d.Kind != tt.kind {
				t.Fatalf("kind = %d, want %d (%+v)", d.Kind, tt.kind, d.Reject)
			}
			if got := ruleName(d); got != tt.rule {
				t.Errorf("rule = %q, want %q", got, tt.rule)
			}
			if d.Tenant != tt.tenant || d.Rate != nil || d.Fleet != nil {
				t.Errorf("tenant %q, rate %v, fleet %v; want tenant %q and no rate limit", d.Tenant, d.Rate, d.Fleet, tt.tenant)
			}
			if tt.kind != gateway.Reject {
				if d.Reject != nil {
					t.Fatalf("a %d decision with a rejection", d.Kind)
				}
				if tt.kind == gateway.Forward && (!slices.Equal(d.Edits.Remove, tt.remove) || !slices.Equal(d.Edits.Set, tt.set)) {
					t.Errorf("edits %+v, want remove %q then set %q", d.Edits, tt.remove, tt.set)
				}
				return
			}
			r := d.Reject
			if r.Reason != tt.reason || r.Kind.Status != tt.status {
				t.Errorf("rejected %d %s, want %d %s", r.Kind.Status, r.Reason.Metric(), tt.status, tt.reason.Metric())
			}
			if tt.challenge != "" && header(r.Headers, "www-authenticate") != tt.challenge {
				t.Errorf("www-authenticate %q, want %q", header(r.Headers, "www-authenticate"), tt.challenge)
			}
			if tt.status == 401 && strings.Contains(r.Message, "Bearer") {
				t.Errorf("message %q echoes the credentials", r.Message)
			}
		})
	}
}

func withBody(r gateway.Request) gateway.Request {
	r.HasBody = true
	return r
}

func TestEditsApply(t *testing.T) {
	in := [][2]string{{":path", "/x"}, {"authorization", "Bearer t"}, {"x-api-key", "spoofed"}, {"accept", "*/*"}}
	e := gateway.Edits{Remove: []string{"authorization"}, Set: [][2]string{{"x-api-key", "alice"}}}
	got := e.Apply(in)
	want := [][2]string{{":path", "/x"}, {"accept", "*/*"}, {"x-api-key", "alice"}}
	if !slices.Equal(got, want) {
		t.Errorf("Apply = %q, want %q", got, want)
	}
	if in[1][0] != "authorization" {
		t.Error("Apply changed its input")
	}
}

func TestNewRequestReadsTheFields(t *testing.T) {
	r := gateway.NewRequest([][2]string{{":method", "PUT"}, {":scheme", "https"}, {":authority", "api.example.com"}, {":path", "/a?b"},
		{"authorization", "Bearer t"}, {"content-type", "application/json"}, {"x-request-id", "id-1"}}, false)
	if r.Method != "PUT" || r.Scheme != "https" || r.Authority != "api.example.com" || r.Path != "/a?b" || r.Authorization != "Bearer t" || r.ContentType != "application/json" || r.ID != "id-1" || !r.HasBody {
		t.Errorf("got %+v", r)
	}
}

func ruleName(d gateway.Decision) string {
	if d.Rule == nil {
		return ""
	}
	return d.Rule.Name
}

func TestNotFoundNamesMethodAndPathWithoutQuery(t *testing.T) {
	d := newGateway(t, baseConfig, "").Decide(get("/nope?token=secret", ""), now)
	if d.Reject == nil || d.Reject.Message != "Route GET /nope not found" || d.Reject.Kind != httperr.NotFound {
		t.Fatalf("got %+v", d.Reject)
	}
}

func TestReasonsAreOneListWithUniqueNames(t *testing.T) {
	seen := map[string]bool{}
	for i, r := range gateway.Reasons() {
		if int(r) != i {
			t.Fatalf("Reasons()[%d] = %d", i, r)
		}
		m := r.Metric()
		if m == "" || m == "unknown" || seen[m] || strings.ContainsAny(m, " .") {
			t.Errorf("reason %d has metric %q (empty, unknown, repeated or not snake_case)", r, m)
		}
		seen[m] = true
	}
	if got := gateway.Reason(len(gateway.Reasons())).Metric(); got != "unknown" {
		t.Errorf("a reason past the list is %q", got)
	}
}

func TestClassifyUpstream(t *testing.T) {
	tests := []struct {
		status  int
		details string
		want    gateway.UpstreamFailure
	}{
		{200, "via_upstream", gateway.NotUpstreamFailure},
		{503, "via_upstream", gateway.NotUpstreamFailure}, // the upstream's own 503 passes through
		{503, "", gateway.NotUpstreamFailure},
		{404, "route_not_found", gateway.NotUpstreamFailure},
		{504, "upstream_response_timeout", gateway.UpstreamTimeout},
		{503, "upstream_reset_before_response_started{connection_failure}", gateway.UpstreamUnreachable},
		{503, "no_healthy_upstream", gateway.UpstreamUnreachable},
		{503, "cluster_not_found", gateway.NotUpstreamFailure},
	}
	for _, tt := range tests {
		if got := gateway.ClassifyUpstream(tt.status, tt.details); got != tt.want {
			t.Errorf("ClassifyUpstream(%d, %q) = %d, want %d", tt.status, tt.details, got, tt.want)
		}
	}
	if gateway.UpstreamTimeout.Kind() != httperr.GatewayTimeout || gateway.UpstreamUnreachable.Kind() != httperr.BadGateway {
		t.Error("timeouts answer 504, unreachable upstreams 502")
	}
}

func TestErrorLogLine(t *testing.T) {
	line := gateway.ErrorLog{Status: 401, Error: "unauthorized", Reason: "jwt_expired", RequestID: "r1",
		Method: "GET", Path: gateway.PathForLog("/api/x?token=secret#frag")}.Line()
	want := `{"event":"gateway_error","status":401,"error":"unauthorized","reason":"jwt_expired","request_id":"r1","method":"GET","path":"/api/x"}`
	if line != want {
		t.Errorf("line\n%s\nwant\n%s", line, want)
	}
	if p := gateway.PathForLog("/" + strings.Repeat("a", 300)); len(p) != 256+3 || !strings.HasSuffix(p, "...") {
		t.Errorf("long path logged as %d bytes", len(p))
	}
}
