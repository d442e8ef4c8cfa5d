// Package health renders the gateway's /health answer and guards it with an
// optional client-address allowlist.
package health

import (
	"time"

	"github.com/portcullis/portcullis/filter/jsonobj"
	"github.com/portcullis/portcullis/filter/netaddr"
	"github.com/portcullis/portcullis/filter/route"
	"github.com/portcullis/portcullis/filter/timestamp"
)

// Report is the /health body.
type Report struct {
	Status    string `json:"status"`
	Node      string `json:"node"`
	Region    string `json:"region"`
	Version   string `json:"version"`
	Timestamp string `json:"timestamp"`
}

// NewReport describes a healthy gateway on node in region at now; an empty
// region (Envoy node without locality) reads "unknown".
func NewReport(node, region, version string, now time.Time) Report {
	if region == "" {
		region = "unknown"
	}
	return Report{Status: "ok", Node: node, Region: region, Version: version, Timestamp: timestamp.Seconds(now)}
}

// JSON renders the report.
func (r Report) JSON() []byte {
	var o jsonobj.Object
	return o.String("status", r.Status).String("node", r.Node).String("region", r.Region).
		String("version", r.Version).String("timestamp", r.Timestamp).Bytes()
}

// Allowlist holds the client networks allowed to read /health; empty allows all.
type Allowlist []netaddr.Prefix

// Allows reports whether the client at address ("ip:port", "[ip]:port" or a
// bare IP, as Envoy's source.address property gives it) may read /health.
// An address that does not parse is refused when the list is non-empty.
func (a Allowlist) Allows(address string) bool {
	if len(a) == 0 {
		return true
	}
	ip, err := route.ClientIP(address)
	if err != nil {
		return false
	}
	for _, p := range a {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
