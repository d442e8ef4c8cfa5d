package jwt_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter/jwt"
)

// A verdict kept for later (the gateway's token cache) expires, and becomes
// valid, exactly where a fresh verification would say so.
func TestValidAtAgreesWithVerify(t *testing.T) {
	now := testNow()
	opts := testOptions()
	v := jwt.NewVerifier(opts)
	token := hs256(with(validClaims(now), "nbf", unix(now.Add(time.Minute)), "exp", unix(now.Add(time.Hour))))
	verifiedAt := now.Add(time.Minute) // the nbf
	vd, err := v.Verify(token, verifiedAt)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{
		now, now.Add(time.Minute - opts.Leeway - time.Second), now.Add(time.Minute - opts.Leeway),
		now.Add(30 * time.Minute), now.Add(time.Hour + opts.Leeway - time.Second), now.Add(time.Hour + opts.Leeway),
		now.Add(2 * time.Hour),
	} {
		want := jwt.ReasonNone
		if _, err := v.Verify(token, at); err != nil {
			want = err.(*jwt.Error).Reason
		}
		if got := vd.ValidAt(at); got != want {
			t.Errorf("at %v: ValidAt = %s, Verify says %s", at.Sub(now), got.Metric(), want.Metric())
		}
	}
	noExp := jwt.NewVerifier(func() jwt.Options { o := opts; o.RequireExp = false; return o }())
	vd, err = noExp.Verify(hs256(without(validClaims(now), "exp")), now)
	if err != nil || vd.ValidAt(now.AddDate(100, 0, 0)) != jwt.ReasonNone {
		t.Errorf("a token without exp: %v, %s a century later", err, vd.ValidAt(now.AddDate(100, 0, 0)).Metric())
	}
}
