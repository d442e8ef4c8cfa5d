package gateway

import (
	"strings"

	"github.com/portcullis/portcullis/filter/jsonobj"
)

// ErrorLog is the one structured line logged for every gateway-made error.
// It never holds headers, query strings or tokens.
type ErrorLog struct {
	Status                                 int
	Error, Reason, RequestID, Method, Path string
	Route                                  string // omitted when empty
	// Shadow marks a refusal in shadow mode: counted and logged, but the
	// request was forwarded ("shadow":true; omitted otherwise).
	Shadow bool
}

// Line is the log line: one JSON object.
func (l ErrorLog) Line() string {
	var o jsonobj.Object
	o.String("event", "gateway_error").Int("status", l.Status).String("error", l.Error).String("reason", l.Reason).
		String("request_id", l.RequestID).String("method", l.Method).String("path", l.Path)
	if l.Route != "" {
		o.String("route", l.Route)
	}
	if l.Shadow {
		o.Bool("shadow", true)
	}
	return string(o.Bytes())
}

// maxLoggedPath bounds the path in log lines.
const maxLoggedPath = 256

// PathForLog drops the query, which may carry credentials, and bounds the length.
func PathForLog(rawPath string) string {
	if i := strings.IndexAny(rawPath, "?#"); i >= 0 {
		rawPath = rawPath[:i]
	}
	if len(rawPath) > maxLoggedPath {
		rawPath = rawPath[:maxLoggedPath] + "..."
	}
	return rawPath
}
