package jwt

import (
	"github.com/portcullis/portcullis/filter/jsonread"
)

// collectMembers walks the top-level members of obj, an object of a document
// jsonread accepted, and stores the values of those named in names into out
// (same index; absent members stay Absent). It reports false when a member
// name repeats: RFC 7515 §5.2 lets a verifier refuse them, and refusing keeps
// the verdict independent of which duplicate a later reader would pick.
// FuzzCollectMembers checks it against encoding/json.
func collectMembers(obj jsonread.Value, names []string, out []jsonread.Value) bool {
	var seen [16]string
	keys := seen[:0]
	for key, value := range obj.Members() {
		for _, k := range keys {
			if k == key {
				return false
			}
		}
		keys = append(keys, key)
		for n, name := range names {
			if name == key {
				out[n] = value
			}
		}
	}
	return true
}

// numericDate is the value of a JSON number (RFC 7519 §2).
func numericDate(number jsonread.Value) float64 {
	f, _ := number.Float()
	return f
}
