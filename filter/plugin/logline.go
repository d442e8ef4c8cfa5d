package plugin

import (
	"encoding/json"
	"strings"
)

// errorLog is the one structured line logged for every gateway-made error.
// It never holds headers, query strings or tokens.
type errorLog struct {
	Event     string `json:"event"`
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Route     string `json:"route,omitempty"`
}

func errorLogLine(l errorLog) string {
	line, err := json.Marshal(l)
	if err != nil {
		return `{"event":"gateway_error"}`
	}
	return string(line)
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
