package gateway_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/internal/jwttest"
)

func withCacheSize(cfg string, n int) string {
	return strings.Replace(cfg, `"audiences": ["api"]`, `"audiences": ["api"], "cache_size": `+strconv.Itoa(n), 1)
}

func TestTokenCacheHitsOnlyTheSameVerifiedToken(t *testing.T) {
	g := newGateway(t, baseConfig, "")
	token := bearer("alice", jwttest.Claims{"email": "a@example.com"})
	first := g.Decide(get("/api/x", token), now)
	second := g.Decide(get("/api/x", token), now.Add(time.Second))
	if first.TokenCache != gateway.TokenCacheMiss || second.TokenCache != gateway.TokenCacheHit {
		t.Fatalf("token cache: %d then %d, want a miss then a hit", first.TokenCache, second.TokenCache)
	}
	if second.Kind != gateway.Forward || second.Tenant != "alice" || header(second.Edits.Set, "x-user-email") != "a@example.com" {
		t.Fatalf("hit: %+v", second)
	}
	// The same header and payload with another signature is a different
	// token: verified (and refused), never a hit.
	forged := token[:len(token)-4] + "AAAA"
	if forged == token {
		forged = token[:len(token)-4] + "BBBB"
	}
	d := g.Decide(get("/api/x", forged), now)
	if d.TokenCache != gateway.TokenCacheMiss || d.Kind != gateway.Reject || d.Reject.Reason != gateway.JWTReason(jwt.ReasonBadSignature) {
		t.Fatalf("forged signature: cache %d, %+v", d.TokenCache, d.Reject)
	}
	// A bad signature is kept as refused, never as verified: the forged
	// token is refused again without a signature check, and the real one
	// still hits.
	if d := g.Decide(get("/api/x", forged), now); d.TokenCache != gateway.TokenCacheRefused || d.Kind != gateway.Reject || d.Reject.Reason != gateway.JWTReason(jwt.ReasonBadSignature) {
		t.Errorf("forged signature again: cache %d, %+v", d.TokenCache, d.Reject)
	}
	if d := g.Decide(get("/api/x", token), now); d.TokenCache != gateway.TokenCacheHit || d.Tenant != "alice" {
		t.Errorf("the verified token after the forged one: cache %d, tenant %q", d.TokenCache, d.Tenant)
	}
}

// TestRefusedTokenCacheKeepsOnlyRefusalsForGood: refusals decided by the
// token and the secrets alone are kept; those from the claims, which are
// checked starting with the clock, are decided again every time.
func TestRefusedTokenCacheKeepsOnlyRefusalsForGood(t *testing.T) {
	g := newGateway(t, baseConfig, "")
	alg := jwttest.Sign([]byte("x"), jwttest.Header{"alg": "HS512", "typ": "JWT"}, jwttest.Claims{"sub": "a"})
	tests := []struct {
		name   string
		token  string
		reason jwt.Reason
		kept   bool
	}{
		{"bad signature", "Bearer " + jwttest.HS256([]byte("not-the-secret-0123456789abcdefghij"), jwttest.Claims{"sub": "a", "iss": "test", "aud": "api", "exp": now.Add(time.Hour).Unix()}), jwt.ReasonBadSignature, true},
		{"unsupported alg", "Bearer " + alg, jwt.ReasonUnsupportedAlg, true},
		{"expired", bearer("e", jwttest.Claims{"exp": now.Add(-time.Hour).Unix()}), jwt.ReasonExpired, false},
		{"wrong audience", bearer("w", jwttest.Claims{"aud": "other"}), jwt.ReasonWrongAudience, false},
		{"malformed", "Bearer a.b", jwt.ReasonMalformed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := gateway.TokenCacheMiss
			if tt.kept {
				want = gateway.TokenCacheRefused
			}
			for i, use := range []gateway.TokenCacheUse{gateway.TokenCacheMiss, want} {
				d := g.Decide(get("/api/x", tt.token), now)
				if d.Kind != gateway.Reject || d.Reject.Reason != gateway.JWTReason(tt.reason) || d.TokenCache != use {
					t.Fatalf("request %d: kind %d cache %d %+v, want %v refused from cache use %d", i+1, d.Kind, d.TokenCache, d.Reject, tt.reason, use)
				}
			}
		})
	}
}

// TestRefusedTokenCacheDoesNotOutliveItsSecrets: a token refused under one
// secret set is verified under a configuration with its secret.
func TestRefusedTokenCacheDoesNotOutliveItsSecrets(t *testing.T) {
	const other = "another-secret-0123456789abcdefghij"
	token := "Bearer " + jwttest.HS256([]byte(other), jwttest.Claims{"sub": "alice", "iss": "test", "aud": "api", "exp": now.Add(time.Hour).Unix()})
	old := newGateway(t, baseConfig, "")
	for range 2 {
		if d := old.Decide(get("/api/x", token), now); d.Kind != gateway.Reject {
			t.Fatal("token accepted under another secret")
		}
	}
	rotated := strings.Replace(baseConfig, `"env": "SECRET"`, `"env": "OTHER"`, 1)
	g := newGatewayEnv(t, rotated, map[string]string{"OTHER": other})
	if d := g.Decide(get("/api/x", token), now); d.Kind != gateway.Forward || d.Tenant != "alice" {
		t.Fatalf("under its own secret: kind %d cache %d %+v", d.Kind, d.TokenCache, d.Reject)
	}
}

func TestTokenCacheRechecksTheClock(t *testing.T) {
	g := newGateway(t, baseConfig, "")
	token := bearer("alice", jwttest.Claims{"exp": now.Add(time.Minute).Unix()})
	if d := g.Decide(get("/api/x", token), now); d.Kind != gateway.Forward {
		t.Fatalf("fresh token refused: %+v", d.Reject)
	}
	// Past exp and the 30 s default leeway: refused as expired, from the cache.
	late := now.Add(time.Minute + 31*time.Second)
	d := g.Decide(get("/api/x", token), late)
	if d.TokenCache != gateway.TokenCacheHit || d.Kind != gateway.Reject || d.Reject.Reason != gateway.JWTReason(jwt.ReasonExpired) {
		t.Fatalf("expired cached token: cache %d, kind %d, %+v", d.TokenCache, d.Kind, d.Reject)
	}
	// The expired entry is gone: the next request verifies again.
	if d := g.Decide(get("/api/x", token), late); d.TokenCache != gateway.TokenCacheMiss || d.Kind != gateway.Reject {
		t.Errorf("after expiry: cache %d, kind %d", d.TokenCache, d.Kind)
	}
	// nbf: a token cached once valid stays subject to its nbf if the clock goes back.
	early := bearer("bob", jwttest.Claims{"nbf": now.Unix()})
	g.Decide(get("/api/x", early), now)
	if d := g.Decide(get("/api/x", early), now.Add(-time.Minute)); d.Kind != gateway.Reject || d.Reject.Reason != gateway.JWTReason(jwt.ReasonNotYetValid) {
		t.Errorf("cached token before its nbf: %+v", d.Reject)
	}
}

func TestTokenCacheDoesNotOutliveItsSecrets(t *testing.T) {
	token := bearer("alice", nil)
	old := newGateway(t, baseConfig, "")
	if d := old.Decide(get("/api/x", token), now); d.Kind != gateway.Forward {
		t.Fatal("token refused under its own secret")
	}
	// A new configuration (the secret rotated away) is a new gateway, whose
	// cache cannot hold the old verdict.
	rotated := strings.Replace(baseConfig, `"env": "SECRET"`, `"env": "OTHER"`, 1)
	g := newGatewayEnv(t, rotated, map[string]string{"OTHER": "another-secret-0123456789abcdefghij"})
	d := g.Decide(get("/api/x", token), now)
	if d.Kind != gateway.Reject || d.Reject.Reason != gateway.JWTReason(jwt.ReasonBadSignature) || d.TokenCache != gateway.TokenCacheMiss {
		t.Fatalf("after the secret was removed: kind %d cache %d %+v", d.Kind, d.TokenCache, d.Reject)
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	const size = 8
	g := newGateway(t, withCacheSize(baseConfig, size), "")
	hot := bearer("hot", nil)
	g.Decide(get("/api/x", hot), now)
	for i := range 100 {
		g.Decide(get("/api/x", bearer("user"+strconv.Itoa(i), nil)), now)
		g.Decide(get("/api/x", hot), now) // used between every insertion
	}
	if d := g.Decide(get("/api/x", hot), now); d.TokenCache != gateway.TokenCacheHit {
		t.Errorf("a token used all along was evicted (CLOCK keeps referenced slots)")
	}
	hits := 0
	for i := range 100 {
		if g.Decide(get("/api/x", bearer("user"+strconv.Itoa(i), nil)), now).TokenCache == gateway.TokenCacheHit {
			hits++
		}
	}
	if hits > size {
		t.Errorf("%d of 100 tokens still cached in a cache of %d", hits, size)
	}
}

func TestTokenCacheSkipsLargeTokensAndCanBeOff(t *testing.T) {
	g := newGateway(t, baseConfig, "")
	large := bearer("alice", jwttest.Claims{"pad": strings.Repeat("x", gateway.MaxCachedTokenBytes)})
	g.Decide(get("/api/x", large), now)
	if d := g.Decide(get("/api/x", large), now); d.Kind != gateway.Forward || d.TokenCache != gateway.TokenCacheMiss {
		t.Errorf("a %d-byte token: kind %d, cache %d; want verified every time", len(large), d.Kind, d.TokenCache)
	}
	off := newGateway(t, withCacheSize(baseConfig, 0), "")
	token := bearer("alice", nil)
	off.Decide(get("/api/x", token), now)
	if d := off.Decide(get("/api/x", token), now); d.Kind != gateway.Forward || d.TokenCache != gateway.TokenCacheUnused {
		t.Errorf("cache_size 0: kind %d, cache %d", d.Kind, d.TokenCache)
	}
}
