package plugin

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/portcullis/portcullis/filter/cache"
	"github.com/portcullis/portcullis/filter/gateway"
	"github.com/portcullis/portcullis/filter/host"
	"github.com/portcullis/portcullis/filter/httperr"
	"github.com/portcullis/portcullis/filter/jsonobj"
)

// The purge endpoint (cache.purge.path; filter/cache decides, this file
// talks to the proxy): a POST with the admin secret asks the cache cluster
// to purge a tag set (a path's, or a surrogate key's), for one tenant or
// all; the index keys the store answers are tombstoned on this Envoy at
// once and deleted in the cluster, so every Envoy sharing it stops serving
// them within its local_index_ttl_ms.

// maxPurgeAnswerBytes bounds what is read of the store's answer: a full tag
// set, one 64-digit key and a newline per member.
const maxPurgeAnswerBytes = cache.MaxTagMembers * 65

func (h *httpContext) purge() types.Action {
	p := h.plugin
	c := p.cfg.Cache
	r := &h.request
	if r.Method != "POST" {
		return h.reply(&gateway.Rejection{Kind: httperr.MethodNotAllowed, Message: "the purge endpoint takes POST",
			Reason: gateway.ReasonPurgeMethod, Headers: [][2]string{{"allow", "POST"}}})
	}
	switch c.Purge.Authorize(r.Authorization) {
	case cache.PurgeNoCredential:
		return h.reply(&gateway.Rejection{Kind: httperr.Unauthorized, Message: "purging needs Authorization: Bearer <the purge secret>",
			Reason: gateway.ReasonPurgeUnauthorized, Headers: [][2]string{{"www-authenticate", `Bearer realm="portcullis-purge"`}}})
	case cache.PurgeWrongSecret:
		return h.reply(&gateway.Rejection{Kind: httperr.Forbidden, Message: "the bearer token is not the purge secret",
			Reason: gateway.ReasonPurgeForbidden})
	}
	req, err := c.Purge.ParsePurge(r.Scheme, r.Authority, r.Path)
	if err != nil {
		return h.reply(&gateway.Rejection{Kind: httperr.BadRequest, Message: err.Error(), Reason: gateway.ReasonPurgeBadRequest})
	}
	// A tenant's path is known without the store: unreachable here now,
	// whatever the store answers.
	p.invalidateIndexes(req.Direct)
	target := "/v1/tags/" + req.TagKey
	if req.Scope != "" {
		target += "?scope=" + req.Scope
	}
	return h.call("cache", c.Cluster, storeHeadersAt(c, "DELETE", target, req.TagKey), nil, c.Timeout, maxPurgeAnswerBytes, func(a answer) types.Action {
		keys, err := cache.ParsePurgedKeys(a.body)
		if a.status != 200 || err != nil {
			if err != nil {
				host.Log(host.Warn, "portcullis: "+err.Error())
			}
			return h.reply(&gateway.Rejection{Kind: httperr.ServiceUnavailable, Reason: gateway.ReasonPurgeUnavailable,
				Message: "the cache cluster did not purge (status " + strconv.Itoa(a.status) + "); try again"})
		}
		p.invalidateIndexes(keys)
		p.metrics.cachePurges.Inc()
		return h.answerPurge(req, len(keys))
	})
}

// answerPurge replies 200 with what was purged: records is the number of
// index records (paths of one scope) the cluster had filed under the tag set.
func (h *httpContext) answerPurge(req *cache.PurgeRequest, records int) types.Action {
	scope := "tenant"
	if req.AllTenants {
		scope = "all"
	}
	var o jsonobj.Object
	o.String("status", "purged").String("by", req.By).String("host", req.Host)
	if req.By == "path" {
		o.String("path", req.Path)
	} else {
		o.String("tag", req.Tag)
	}
	o.String("scope", scope).Int("index_records", records).String("request_id", h.requestID)
	host.Log(host.Info, "portcullis: cache purge by "+req.By+" on "+req.Host+", scope "+scope+": "+strconv.Itoa(records)+" index records")
	h.stage = stageReplied
	h.access.Reply = "purge"
	h.publishAccess()
	if err := proxywasm.SendHttpResponse(200, jsonReplyHeaders, o.Bytes(), -1); err != nil {
		host.Log(host.Error, "portcullis: cannot send the purge answer: "+err.Error())
	}
	return types.ActionPause
}
