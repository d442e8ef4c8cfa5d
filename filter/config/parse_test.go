package config_test

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/config"
	"github.com/portcullis/portcullis/filter/jwt"
	"github.com/portcullis/portcullis/filter/netaddr"
	"github.com/portcullis/portcullis/filter/route"
)

// Secrets the test environment holds. None of them may ever appear in an error.
var (
	secret32    = "0123456789abcdef0123456789abcdef"            // exactly 32 bytes
	secretLong  = "a-much-longer-secret-for-key-two-0123456789" // 43 bytes
	secretShort = "only-31-bytes-long-0123456789ab"             // 31 bytes
	secretB64   = base64.StdEncoding.EncodeToString([]byte(secret32))
	secretB64u  = base64.RawURLEncoding.EncodeToString([]byte("\xfb\xff" + secret32[2:]))
	// 24 bytes once decoded, although the text is 32 characters long.
	shortB64  = base64.StdEncoding.EncodeToString([]byte("twenty-four-bytes-secret"))
	shortB64u = base64.RawURLEncoding.EncodeToString([]byte("twenty-four-bytes-secret"))
)

func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"JWT_SECRET":     secret32,
		"JWT_SECRET_2":   secretLong,
		"JWT_SECRET_B64": base64.StdEncoding.EncodeToString([]byte(secret32)),
		"SHORT":          secretShort,
		"B64":            secretB64,
		"B64URL":         secretB64u,
		"B64URL_PAD":     secretB64u + "=",
		"SHORT_B64":      shortB64,
		"SHORT_B64URL":   shortB64u,
		"NOT_B64":        "this is not base64!!! but it is long enough",
		"EMPTY":          "",
	}[name]
	return v, ok
}

const minimal = `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"routes":[{"prefix":"/api"}]}`

// contractExample is a configuration using every core field (README "Configuration").
const contractExample = `{
  "jwt": {
    "secrets": [{"kid": "k1", "env": "JWT_SECRET", "encoding": "raw"}],
    "issuer": "portcullis-dev",
    "audiences": ["portcullis-api"],
    "leeway_seconds": 30,
    "require_exp": true,
    "max_token_bytes": 8192
  },
  "identity": {
    "key_claim": "sub",
    "key_header": "x-api-key",
    "claim_headers": {"email": "x-user-email", "plan": "x-user-plan"},
    "keep_authorization": false
  },
  "routes": [
    {"name": "public", "prefix": "/api/public", "methods": ["GET", "HEAD"], "public": true},
    {"name": "api", "prefix": "/api"}
  ],
  "health": {"path": "/health", "allow_cidrs": []},
  "content_types": ["application/json"]
}`

func mustParse(t *testing.T, doc string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(doc), testEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParseDefaults(t *testing.T) {
	c := mustParse(t, minimal)
	want := &jwt.Options{
		Keys:          []jwt.Key{{Secret: []byte(secret32)}},
		Leeway:        30 * time.Second,
		RequireExp:    true,
		MaxTokenBytes: 8192,
		KeyClaim:      "sub",
	}
	if !reflect.DeepEqual(c.JWT, want) {
		t.Errorf("JWT = %+v, want %+v", c.JWT, want)
	}
	if c.Identity.KeyHeader != "x-api-key" || len(c.Identity.ClaimHeaders) != 0 || c.Identity.KeepAuthorization {
		t.Errorf("Identity = %+v, want x-api-key, no claim headers, authorization stripped", c.Identity)
	}
	if !reflect.DeepEqual(c.ContentTypes, []string{"application/json"}) {
		t.Errorf("ContentTypes = %q, want [application/json]", c.ContentTypes)
	}
	if c.HealthPath != "/health" {
		t.Errorf("HealthPath = %q, want /health", c.HealthPath)
	}
	if len(c.HealthAllow) != 0 || !c.HealthAllow.Allows("203.0.113.9:1234") {
		t.Errorf("HealthAllow = %v, want empty (everyone)", c.HealthAllow)
	}
	rule, ok := c.Routes.Match("POST", "/api/orders")
	if !ok || rule.Name != "/api" || rule.Public || len(rule.Methods) != 0 {
		t.Errorf("Match(POST /api/orders) = %+v, %v; want the protected /api rule named after its prefix, every method", rule, ok)
	}
}

func TestParseContractExample(t *testing.T) {
	c := mustParse(t, contractExample)
	want := &jwt.Options{
		Keys:          []jwt.Key{{ID: "k1", Secret: []byte(secret32)}},
		Issuer:        "portcullis-dev",
		Audiences:     []string{"portcullis-api"},
		Leeway:        30 * time.Second,
		RequireExp:    true,
		MaxTokenBytes: 8192,
		KeyClaim:      "sub",
	}
	if !reflect.DeepEqual(c.JWT, want) {
		t.Errorf("JWT = %+v, want %+v", c.JWT, want)
	}
	wantID := route.Identity{KeyHeader: "x-api-key", ClaimHeaders: []route.ClaimHeader{
		{Claim: "email", Header: "x-user-email"},
		{Claim: "plan", Header: "x-user-plan"},
	}}
	if !reflect.DeepEqual(c.Identity, wantID) {
		t.Errorf("Identity = %+v, want %+v", c.Identity, wantID)
	}
	for _, tc := range []struct {
		method, path, rule string
		public             bool
	}{
		{"GET", "/api/public/docs", "public", true},
		{"HEAD", "/api/public", "public", true},
		{"POST", "/api/public", "api", false},
		{"GET", "/api/users", "api", false},
	} {
		r, ok := c.Routes.Match(tc.method, tc.path)
		if !ok || r.Name != tc.rule || r.Public != tc.public {
			t.Errorf("Match(%s %s) = %+v, %v; want rule %q public=%v", tc.method, tc.path, r, ok, tc.rule, tc.public)
		}
	}
	if _, ok := c.Routes.Match("GET", "/other"); ok {
		t.Errorf("Match(GET /other) matched; want no rule")
	}
}

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doc   string
		check func(t *testing.T, c *config.Config)
	}{
		{"every route public, no jwt", `{"routes":[{"prefix":"/","public":true}]}`, func(t *testing.T, c *config.Config) {
			if c.JWT != nil {
				t.Errorf("JWT = %+v, want nil", c.JWT)
			}
		}},
		{"jwt with every route public is still compiled", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"routes":[{"prefix":"/","public":true}]}`, func(t *testing.T, c *config.Config) {
			if c.JWT == nil || c.JWT.KeyClaim != "sub" {
				t.Errorf("JWT = %+v, want compiled options", c.JWT)
			}
		}},
		{"two secrets keep their order and ids", `{"jwt":{"secrets":[{"kid":"a","env":"JWT_SECRET"},{"kid":"b","env":"JWT_SECRET_2"}]},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			want := []jwt.Key{{ID: "a", Secret: []byte(secret32)}, {ID: "b", Secret: []byte(secretLong)}}
			if !reflect.DeepEqual(c.JWT.Keys, want) {
				t.Errorf("Keys = %+v, want %+v", c.JWT.Keys, want)
			}
		}},
		{"two secrets without kid", `{"jwt":{"secrets":[{"env":"JWT_SECRET"},{"env":"JWT_SECRET_2"}]},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if len(c.JWT.Keys) != 2 {
				t.Errorf("Keys = %+v, want two", c.JWT.Keys)
			}
		}},
		{"base64 secret is decoded", `{"jwt":{"secrets":[{"env":"B64","encoding":"base64"}]},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if string(c.JWT.Keys[0].Secret) != secret32 {
				t.Errorf("Secret = %q, want the decoded bytes", c.JWT.Keys[0].Secret)
			}
		}},
		{"base64url secret is decoded", `{"jwt":{"secrets":[{"env":"B64URL","encoding":"base64url"}]},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if string(c.JWT.Keys[0].Secret) != "\xfb\xff"+secret32[2:] {
				t.Errorf("Secret = %q, want the decoded bytes", c.JWT.Keys[0].Secret)
			}
		}},
		{"padded base64url secret is decoded", `{"jwt":{"secrets":[{"env":"B64URL_PAD","encoding":"base64url"}]},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if string(c.JWT.Keys[0].Secret) != "\xfb\xff"+secret32[2:] {
				t.Errorf("Secret = %q, want the decoded bytes", c.JWT.Keys[0].Secret)
			}
		}},
		{"raw encoding named explicitly", `{"jwt":{"secrets":[{"env":"JWT_SECRET","encoding":"raw"}]},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if string(c.JWT.Keys[0].Secret) != secret32 {
				t.Errorf("Secret = %q", c.JWT.Keys[0].Secret)
			}
		}},
		{"leeway 0, exp optional, smallest token limit", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":0,"require_exp":false,"max_token_bytes":64},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if c.JWT.Leeway != 0 || c.JWT.RequireExp || c.JWT.MaxTokenBytes != 64 {
				t.Errorf("JWT = %+v, want leeway 0, exp optional, 64 bytes", c.JWT)
			}
		}},
		{"token cache and error lines by default", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if c.TokenCacheSize != config.DefaultTokenCache || c.ErrorLinesPerSecond != config.DefaultErrorLines {
				t.Errorf("token cache %d, error lines %d; want the defaults", c.TokenCacheSize, c.ErrorLinesPerSecond)
			}
		}},
		{"token cache off, error lines unbounded", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}],"cache_size":0},"routes":[{"prefix":"/"}],"log":{"errors_per_second":0}}`, func(t *testing.T, c *config.Config) {
			if c.TokenCacheSize != 0 || c.ErrorLinesPerSecond != 0 {
				t.Errorf("token cache %d, error lines %d; want 0 and 0", c.TokenCacheSize, c.ErrorLinesPerSecond)
			}
		}},
		{"largest leeway and token limit", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":300,"max_token_bytes":65536},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if c.JWT.Leeway != 300*time.Second || c.JWT.MaxTokenBytes != 65536 {
				t.Errorf("JWT = %+v, want leeway 300s, 65536 bytes", c.JWT)
			}
		}},
		{"custom key claim reaches the verifier", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"identity":{"key_claim":"uid"},"routes":[{"prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if c.JWT.KeyClaim != "uid" {
				t.Errorf("KeyClaim = %q, want uid", c.JWT.KeyClaim)
			}
		}},
		{"header names and methods are normalised", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"identity":{"key_header":"X-Caller","claim_headers":{"plan":"X-Plan","email":"X-Email"},"keep_authorization":true},"routes":[{"prefix":"/a","methods":["get","Post"]}]}`, func(t *testing.T, c *config.Config) {
			want := route.Identity{KeyHeader: "x-caller", KeepAuthorization: true, ClaimHeaders: []route.ClaimHeader{
				{Claim: "email", Header: "x-email"}, {Claim: "plan", Header: "x-plan"},
			}}
			if !reflect.DeepEqual(c.Identity, want) {
				t.Errorf("Identity = %+v, want %+v (sorted by claim, lower case)", c.Identity, want)
			}
			if _, ok := c.Routes.Match("POST", "/a"); !ok {
				t.Errorf("methods were not upper-cased")
			}
			if _, ok := c.Routes.Match("DELETE", "/a"); ok {
				t.Errorf("DELETE matched a GET/POST rule")
			}
		}},
		{"content types lower-cased", `{"routes":[{"prefix":"/","public":true}],"content_types":["Application/JSON","text/plain","application/vnd.api+json"]}`, func(t *testing.T, c *config.Config) {
			want := []string{"application/json", "text/plain", "application/vnd.api+json"}
			if !reflect.DeepEqual(c.ContentTypes, want) {
				t.Errorf("ContentTypes = %q, want %q", c.ContentTypes, want)
			}
		}},
		{"health path and CIDRs", `{"routes":[{"prefix":"/","public":true}],"health":{"path":"/ready","allow_cidrs":["10.1.2.3/8","2001:db8::1/32","192.0.2.7/32"]}}`, func(t *testing.T, c *config.Config) {
			if c.HealthPath != "/ready" {
				t.Errorf("HealthPath = %q", c.HealthPath)
			}
			want := []netaddr.Prefix{netaddr.MustParsePrefix("10.0.0.0/8"), netaddr.MustParsePrefix("2001:db8::/32"), netaddr.MustParsePrefix("192.0.2.7/32")}
			if !reflect.DeepEqual([]netaddr.Prefix(c.HealthAllow), want) {
				t.Errorf("HealthAllow = %v, want masked %v", c.HealthAllow, want)
			}
		}},
		{"field names match case-insensitively, as encoding/json does", `{"JWT":{"Secrets":[{"ENV":"JWT_SECRET"}]},"Routes":[{"Prefix":"/"}]}`, func(t *testing.T, c *config.Config) {
			if c.JWT == nil {
				t.Errorf("JWT not compiled")
			}
		}},
		{"surrounding whitespace", " \n\t" + minimal + "\n ", func(*testing.T, *config.Config) {}},
		{"route name defaults to its prefix", `{"routes":[{"prefix":"/a","public":true},{"name":"bee","prefix":"/b","public":true}]}`, func(t *testing.T, c *config.Config) {
			if r, _ := c.Routes.Match("GET", "/a"); r == nil || r.Name != "/a" {
				t.Errorf("rule for /a = %+v, want name /a", r)
			}
			if r, _ := c.Routes.Match("GET", "/b"); r == nil || r.Name != "bee" {
				t.Errorf("rule for /b = %+v, want name bee", r)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, mustParse(t, tc.doc)) })
	}
}

// withRoutes wraps route JSON into an otherwise valid configuration.
func withRoutes(routes string) string {
	return `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]},"routes":` + routes + `}`
}

// withJWT wraps jwt JSON into an otherwise valid configuration.
func withJWT(j string) string { return `{"jwt":` + j + `,"routes":[{"prefix":"/api"}]}` }

// withSecrets wraps a secrets array.
func withSecrets(s string) string { return withJWT(`{"secrets":` + s + `}`) }

// withMember adds one top-level member to the minimal configuration.
func withMember(member string) string { return minimal[:len(minimal)-1] + "," + member + "}" }

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		doc     string
		field   string // the exact field path the error must name ("" = the document)
		problem string // a part of the problem text
	}{
		// The document.
		{"empty", ``, "", "the configuration is empty"},
		{"only whitespace", " \n\t ", "", "the configuration is empty"},
		{"not JSON", `jwt: {}`, "", "not valid JSON"},
		{"truncated JSON", `{"routes":[`, "", "not valid JSON (truncated)"},
		{"trailing garbage", minimal + ` x`, "", "unexpected data after the configuration object"},
		{"two objects", minimal + `{}`, "", "unexpected data after the configuration object"},
		{"a JSON array", `[]`, "", "must be a JSON object, not array"},
		{"a JSON string", `"config"`, "", "must be a JSON object, not string"},
		{"a JSON number", `42`, "", "must be a JSON object, not number"},
		{"a JSON boolean", `true`, "", "must be a JSON object, not bool"},
		{"null has no routes", `null`, "routes", "required"},
		{"empty object has no routes", `{}`, "routes", "required"},

		// Unknown fields, named where they are.
		{"unknown top-level field", withMember(`"routs":[]`), "routs", "unknown field"},
		{"unknown jwt field", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway":30}`), "jwt.leeway", "unknown field"},
		{"unknown secret field", withSecrets(`[{"env":"JWT_SECRET","value":"hunter2"}]`), "jwt.secrets[0].value", "unknown field"},
		{"unknown field in the second secret", withSecrets(`[{"env":"JWT_SECRET"},{"env":"JWT_SECRET_2","kdi":"x"}]`), "jwt.secrets[1].kdi", "unknown field"},
		{"unknown field in the second route", withRoutes(`[{"prefix":"/a"},{"prefx":"/b"}]`), "routes[1].prefx", "unknown field"},
		{"unknown identity field", withMember(`"identity":{"keyheader":"x"}`), "identity.keyheader", "unknown field"},
		{"unknown health field", withMember(`"health":{"allow_cidr":["10.0.0.0/8"]}`), "health.allow_cidr", "unknown field"},

		// Wrong types.
		{"leeway as a string", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":"30"}`), "jwt.leeway_seconds", "must be an integer, not string"},
		{"leeway fractional", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":1.5}`), "jwt.leeway_seconds", "must be an integer"},
		{"require_exp as a string", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"require_exp":"true"}`), "jwt.require_exp", "must be a boolean, not string"},
		{"audiences as a string", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"audiences":"api"}`), "jwt.audiences", "must be an array, not string"},
		{"jwt as an array", `{"jwt":[],"routes":[{"prefix":"/"}]}`, "jwt", "must be an object, not array"},
		{"routes not an array", withRoutes(`{"prefix":"/api"}`), "routes", "must be an array, not object"},
		{"routes a string", withRoutes(`"/api"`), "routes", "must be an array, not string"},
		{"public as a string", withRoutes(`[{"prefix":"/api","public":"yes"}]`), "routes[0].public", "must be a boolean, not string"},
		{"public as a string in the second route", withRoutes(`[{"prefix":"/a"},{"prefix":"/b","public":"yes"}]`), "routes[1].public", "must be a boolean, not string"},
		{"methods as a string", withRoutes(`[{"prefix":"/a","methods":"GET"}]`), "routes[0].methods", "must be an array, not string"},
		{"kid as a number", withSecrets(`[{"kid":1,"env":"JWT_SECRET"}]`), "jwt.secrets[0].kid", "must be a string, not number"},
		{"claim header as a number", withMember(`"identity":{"claim_headers":{"email":1}}`), "identity.claim_headers.email", "must be a string, not number"},
		{"content_types a string", withMember(`"content_types":"application/json"`), "content_types", "must be an array, not string"},
		{"allow_cidrs element a number", withMember(`"health":{"allow_cidrs":[10]}`), "health.allow_cidrs[0]", "must be a string, not number"},

		// jwt and its secrets.
		{"missing jwt while a route is protected", `{"routes":[{"prefix":"/a","public":true},{"prefix":"/b"}]}`, "jwt", "required"},
		{"null jwt while a route is protected", `{"jwt":null,"routes":[{"prefix":"/b"}]}`, "jwt", "required"},
		{"no secrets", withJWT(`{}`), "jwt.secrets", "at least one secret"},
		{"empty secrets", withSecrets(`[]`), "jwt.secrets", "at least one secret"},
		{"secret without env", withSecrets(`[{"kid":"k1"}]`), "jwt.secrets[0].env", "required"},
		{"secret env var unset", withSecrets(`[{"env":"NOT_SET_ANYWHERE"}]`), "jwt.secrets[0].env", `"NOT_SET_ANYWHERE" is not set`},
		{"secret env var empty", withSecrets(`[{"env":"EMPTY"}]`), "jwt.secrets[0].env", `"EMPTY" is not set`},
		{"secret shorter than 32 bytes", withSecrets(`[{"env":"SHORT"}]`), "jwt.secrets[0].env", "31 bytes; HS256 needs at least 32"},
		{"second secret too short", withSecrets(`[{"env":"JWT_SECRET"},{"env":"SHORT"}]`), "jwt.secrets[1].env", "31 bytes"},
		{"base64 secret short once decoded", withSecrets(`[{"env":"SHORT_B64","encoding":"base64"}]`), "jwt.secrets[0].env", "24 bytes; HS256 needs at least 32"},
		{"base64url secret short once decoded", withSecrets(`[{"env":"SHORT_B64URL","encoding":"base64url"}]`), "jwt.secrets[0].env", "24 bytes"},
		{"secret not base64", withSecrets(`[{"env":"NOT_B64","encoding":"base64"}]`), "jwt.secrets[0].env", "not valid base64"},
		{"secret not base64url", withSecrets(`[{"env":"NOT_B64","encoding":"base64url"}]`), "jwt.secrets[0].env", "not valid base64url"},
		{"unknown encoding", withSecrets(`[{"env":"JWT_SECRET","encoding":"hex"}]`), "jwt.secrets[0].encoding", `must be raw, base64 or base64url, got "hex"`},
		{"encoding in upper case", withSecrets(`[{"env":"JWT_SECRET","encoding":"BASE64"}]`), "jwt.secrets[0].encoding", "must be raw, base64 or base64url"},
		{"duplicate kid", withSecrets(`[{"kid":"k1","env":"JWT_SECRET"},{"kid":"k1","env":"JWT_SECRET_2"}]`), "jwt.secrets[1].kid", `duplicate key id "k1"`},
		{"empty audience", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"audiences":["api",""]}`), "jwt.audiences[1]", "must not be empty"},
		{"leeway 900", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":900}`), "jwt.leeway_seconds", "must be between 0 and 300, got 900"},
		{"leeway 301", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":301}`), "jwt.leeway_seconds", "must be between 0 and 300, got 301"},
		{"leeway -1", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":-1}`), "jwt.leeway_seconds", "must be between 0 and 300, got -1"},
		{"max_token_bytes 0", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"max_token_bytes":0}`), "jwt.max_token_bytes", "must be between 64 and 65536, got 0"},
		{"max_token_bytes 63", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"max_token_bytes":63}`), "jwt.max_token_bytes", "got 63"},
		{"max_token_bytes 65537", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"max_token_bytes":65537}`), "jwt.max_token_bytes", "got 65537"},
		{"max_token_bytes negative", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"max_token_bytes":-8192}`), "jwt.max_token_bytes", "got -8192"},
		{"cache_size negative", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"cache_size":-1}`), "jwt.cache_size", "must be between 0 and 65536, got -1"},
		{"cache_size too large", withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"cache_size":65537}`), "jwt.cache_size", "got 65537"},
		{"errors_per_second negative", `{"routes":[{"prefix":"/","public":true}],"log":{"errors_per_second":-1}}`, "log.errors_per_second", "must be between 0 and 100000, got -1"},
		{"log unknown field", `{"routes":[{"prefix":"/","public":true}],"log":{"lines":1}}`, "log.lines", "unknown field"},

		// Routes.
		{"no routes", `{"jwt":{"secrets":[{"env":"JWT_SECRET"}]}}`, "routes", "at least one route rule"},
		{"empty routes", withRoutes(`[]`), "routes", "at least one route rule"},
		{"route without prefix", withRoutes(`[{"name":"x"}]`), "routes[0].prefix", "required"},
		{"prefix without leading slash", withRoutes(`[{"prefix":"api"}]`), "routes[0].prefix", `starting with "/"`},
		{"prefix with ..", withRoutes(`[{"prefix":"/api/../admin"}]`), "routes[0].prefix", "without dot segments"},
		{"prefix ending in ..", withRoutes(`[{"prefix":"/api/.."}]`), "routes[0].prefix", "without dot segments"},
		{"prefix with .", withRoutes(`[{"prefix":"/api/./x"}]`), "routes[0].prefix", "without dot segments"},
		{"prefix with a query", withRoutes(`[{"prefix":"/api?x=1"}]`), "routes[0].prefix", "query"},
		{"prefix with a fragment", withRoutes(`[{"prefix":"/api#x"}]`), "routes[0].prefix", "query"},
		{"prefix with an encoded slash", withRoutes(`[{"prefix":"/api%2Fx"}]`), "routes[0].prefix", "escapes"},
		{"prefix with an encoded dot", withRoutes(`[{"prefix":"/api/%2e%2e"}]`), "routes[0].prefix", "escapes"},
		{"prefix with a backslash", withRoutes(`[{"prefix":"/api\\x"}]`), "routes[0].prefix", "escapes"},
		{"bad prefix in the third route", withRoutes(`[{"prefix":"/a"},{"prefix":"/b"},{"prefix":"c"}]`), "routes[2].prefix", `starting with "/"`},
		{"method with a space", withRoutes(`[{"prefix":"/a","methods":["GET","GET POST"]}]`), "routes[0].methods[1]", `not an HTTP method: "GET POST"`},
		{"empty method", withRoutes(`[{"prefix":"/a","methods":[""]}]`), "routes[0].methods[0]", "not an HTTP method"},
		{"method with a separator", withRoutes(`[{"prefix":"/a","methods":["GET,POST"]}]`), "routes[0].methods[0]", "not an HTTP method"},

		// Health.
		{"bad CIDR prefix length", withMember(`"health":{"allow_cidrs":["10.0.0.0/33"]}`), "health.allow_cidrs[0]", `not a CIDR prefix: "10.0.0.0/33"`},
		{"CIDR not an address", withMember(`"health":{"allow_cidrs":["10.0.0.0/8","localhost/8"]}`), "health.allow_cidrs[1]", "not a CIDR prefix"},
		{"bare IP where a CIDR is needed", withMember(`"health":{"allow_cidrs":["10.0.0.1"]}`), "health.allow_cidrs[0]", "not a CIDR prefix"},
		{"empty CIDR", withMember(`"health":{"allow_cidrs":[""]}`), "health.allow_cidrs[0]", "not a CIDR prefix"},
		{"health path relative", withMember(`"health":{"path":"health"}`), "health.path", "plain absolute path"},
		{"health path with ..", withMember(`"health":{"path":"/a/../health"}`), "health.path", "plain absolute path"},
		{"health path with a query", withMember(`"health":{"path":"/health?full=1"}`), "health.path", "plain absolute path"},

		// Identity.
		{"key header authorization", withMember(`"identity":{"key_header":"authorization"}`), "identity.key_header", `"authorization" is reserved`},
		{"key header Authorization", withMember(`"identity":{"key_header":"Authorization"}`), "identity.key_header", `"authorization" is reserved`},
		{"key header host", withMember(`"identity":{"key_header":"Host"}`), "identity.key_header", `"host" is reserved`},
		{"key header cookie", withMember(`"identity":{"key_header":"cookie"}`), "identity.key_header", "reserved"},
		{"key header x-request-id", withMember(`"identity":{"key_header":"x-request-id"}`), "identity.key_header", "reserved"},
		{"key header pseudo-header", withMember(`"identity":{"key_header":":authority"}`), "identity.key_header", "not a valid header name"},
		{"key header with a space", withMember(`"identity":{"key_header":"x api key"}`), "identity.key_header", "not a valid header name"},
		{"key claim with spaces", withMember(`"identity":{"key_claim":" sub"}`), "identity.key_claim", "surrounding spaces"},
		{"claim header duplicated", withMember(`"identity":{"claim_headers":{"email":"x-user","plan":"x-user"}}`), "identity.claim_headers.plan", `header "x-user" is set twice`},
		{"claim header duplicated across case", withMember(`"identity":{"claim_headers":{"email":"X-User","plan":"x-user"}}`), "identity.claim_headers.plan", "set twice"},
		{"claim header equal to the key header", withMember(`"identity":{"claim_headers":{"email":"X-API-Key"}}`), "identity.claim_headers.email", "set twice"},
		{"claim header reserved", withMember(`"identity":{"claim_headers":{"email":"Authorization"}}`), "identity.claim_headers.email", "not a usable header name"},
		{"claim header invalid", withMember(`"identity":{"claim_headers":{"email":"x user"}}`), "identity.claim_headers.email", "not a usable header name"},
		{"claim header empty", withMember(`"identity":{"claim_headers":{"email":""}}`), "identity.claim_headers.email", "not a usable header name"},
		{"claim name empty", withMember(`"identity":{"claim_headers":{"":"x-user"}}`), "identity.claim_headers", "claim names must not be empty"},

		// Content types.
		{"content type without subtype", withMember(`"content_types":["json"]`), "content_types[0]", `not a media type: "json"`},
		{"content type with parameters", withMember(`"content_types":["application/json; charset=utf-8"]`), "content_types[0]", "not a media type"},
		{"content type with two slashes", withMember(`"content_types":["application/json","a/b/c"]`), "content_types[1]", "not a media type"},
		{"content type empty", withMember(`"content_types":[""]`), "content_types[0]", "not a media type"},
		{"content types empty list", withMember(`"content_types":[]`), "content_types", "at least one media type"},

		// Rate limits: ratelimit.NewPolicy's errors, mapped onto the configuration's fields.
		{"limit requests out of range", withMember(`"rate_limit":{"default":[{"requests":0,"window_seconds":60}]}`), "rate_limit.default[0].requests", "must be between 1 and"},
		{"limit window duplicated", withMember(`"rate_limit":{"default":[{"requests":5,"window_seconds":60},{"requests":6,"window_seconds":60}]}`), "rate_limit.default[1].window_seconds", "duplicate window"},
		{"limit list empty", withMember(`"rate_limit":{"default":[]}`), "rate_limit.default", "required: at least one limit"},
		{"limit list too long", withMember(`"rate_limit":{"default":[` + strings.Repeat(`{"requests":1,"window_seconds":1},`, 8) + `{"requests":1,"window_seconds":9}]}`), "rate_limit.default", "at most 8 limits"},
		{"plan name unusable", withMember(`"rate_limit":{"plans":{"claim":"tier","by_plan":{"pro plan":[{"requests":1,"window_seconds":1}]}}}`), "rate_limit.plans.by_plan.pro plan", `name "pro plan" must be visible ASCII`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.doc), testEnv)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %q is not a *config.FieldError", err, err)
			}
			if fe.Field != tc.field {
				t.Errorf("Field = %q, want %q (error %q)", fe.Field, tc.field, err)
			}
			msg := err.Error()
			if tc.field != "" && !strings.HasPrefix(msg, tc.field+": ") {
				t.Errorf("error %q does not start with %q", msg, tc.field+": ")
			}
			if !strings.Contains(msg, tc.problem) {
				t.Errorf("error %q does not say %q", msg, tc.problem)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans lines; the plugin logs one line", msg)
			}
			for _, secret := range []string{secret32, secretLong, secretShort, secretB64, shortB64, shortB64u, "this is not base64"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q reveals a secret", msg)
				}
			}
		})
	}
}

// TestParseContractLogExample pins the exact sentence the contract quotes.
func TestParseContractLogExample(t *testing.T) {
	_, err := config.Parse([]byte(withJWT(`{"secrets":[{"env":"JWT_SECRET"}],"leeway_seconds":900}`)), testEnv)
	want := "jwt.leeway_seconds: must be between 0 and 300, got 900"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestParseReadsOnlyNamedVariables(t *testing.T) {
	var asked []string
	env := func(name string) (string, bool) {
		asked = append(asked, name)
		return testEnv(name)
	}
	if _, err := config.Parse([]byte(withSecrets(`[{"env":"JWT_SECRET"},{"env":"JWT_SECRET_2"}]`)), env); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(asked, []string{"JWT_SECRET", "JWT_SECRET_2"}) {
		t.Errorf("looked up %q, want exactly the two named variables", asked)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		minimal,
		contractExample,
		`{"routes":[{"prefix":"/","public":true}]}`,
		withSecrets(`[{"kid":"a","env":"B64","encoding":"base64"},{"kid":"b","env":"SHORT"}]`),
		withRoutes(`[{"prefix":"/a","prefx":"/b"}]`),
		withMember(`"health":{"allow_cidrs":["10.0.0.0/8","::/0"]}`),
		`[]`, `null`, ``, `{"jwt":`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := config.Parse(doc, testEnv)
		if err != nil {
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Problem == "" {
				t.Fatalf("error %T %q is not a FieldError with a problem", err, err)
			}
			if strings.Contains(err.Error(), secret32) || strings.Contains(err.Error(), secretLong) {
				t.Fatalf("error %q reveals a secret", err)
			}
			return
		}
		if c.HealthPath == "" || c.HealthPath[0] != '/' || len(c.ContentTypes) == 0 || c.Identity.KeyHeader == "" {
			t.Fatalf("accepted an incomplete configuration: %+v", c)
		}
		if c.JWT != nil {
			o := c.JWT
			if len(o.Keys) == 0 || o.Leeway < 0 || o.Leeway > 300*time.Second || o.MaxTokenBytes < 64 || o.MaxTokenBytes > 65536 || o.KeyClaim == "" {
				t.Fatalf("accepted JWT options out of bounds: %+v", o)
			}
			for _, k := range o.Keys {
				if len(k.Secret) < 32 {
					t.Fatalf("accepted a %d-byte secret", len(k.Secret))
				}
			}
		}
	})
}
