package plugin

import (
	"strings"

	"github.com/portcullis/portcullis/filter/jsonobj"
)

// errorLog is the one structured line logged for every gateway-made error.
// It never holds headers, query strings or tokens.
type errorLog struct {
	Status                                 int
	Error, Reason, RequestID, Method, Path string
	Route                                  string // omitted when empty
}

func errorLogLine(l errorLog) string {
	var o jsonobj.Object
	o.String("event", "gateway_error").Int("status", l.Status).String("error", l.Error).String("reason", l.Reason).
		String("request_id", l.RequestID).String("method", l.Method).String("path", l.Path)
	if l.Route != "" {
		o.String("route", l.Route)
	}
	return string(o.Bytes())
}

// pathForLog drops the query, which may carry credentials, and bounds the length.
func pathForLog(rawPath string) string {
	if i := strings.IndexAny(rawPath, "?#"); i >= 0 {
		rawPath = rawPath[:i]
	}
	const max = 256
	if len(rawPath) > max {
		rawPath = rawPath[:max] + "..."
	}
	return rawPath
}
