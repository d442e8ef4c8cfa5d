package wasmimage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// pinnedURL matches a WasmPlugin's image URL pinned by digest,
// "url: oci://<repository>@sha256:<64 hex>", capturing the text before the
// repository and the repository. Only "url:" lines with oci:// match, so
// the container images pinned elsewhere in the manifests are left alone.
var pinnedURL = regexp.MustCompile(`(?m)^(\s*url:\s*["']?oci://)([^@\s"']+)@sha256:[0-9a-f]{64}`)

// Pin rewrites, in every *.yaml file directly in dir, each pinned image URL
// to digest, and to repo when repo is not empty. It returns the files it
// changed. Finding no pinned URL at all is an error: the manifests moved
// and the pin would silently go stale.
func Pin(dir, repo string, digest v1.Hash) (changed []string, err error) {
	if digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("wasmimage: pin: digest %s is not sha256", digest)
	}
	if strings.ContainsAny(repo, "@ \t\n\"'") || strings.Contains(repo, "://") {
		return nil, fmt.Errorf("wasmimage: pin: %q is not a repository (host/path, without scheme, tag or digest)", repo)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	found := 0
	for _, f := range files {
		old, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		found += len(pinnedURL.FindAllIndex(old, -1))
		updated := pinnedURL.ReplaceAllFunc(old, func(m []byte) []byte {
			parts := pinnedURL.FindSubmatch(m)
			r := string(parts[2])
			if repo != "" {
				r = repo
			}
			return []byte(string(parts[1]) + r + "@" + digest.String())
		})
		if bytes.Equal(old, updated) {
			continue
		}
		if err := os.WriteFile(f, updated, 0o644); err != nil {
			return nil, err
		}
		changed = append(changed, f)
	}
	if found == 0 {
		return nil, fmt.Errorf("wasmimage: pin: no %q line in %s/*.yaml", "url: oci://<repository>@sha256:<digest>", dir)
	}
	return changed, nil
}

// Pinned returns every pinned image URL (without "oci://") in the *.yaml
// files directly in dir, by file.
func Pinned(dir string) (map[string][]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range pinnedURL.FindAll(b, -1) {
			_, ref, _ := strings.Cut(string(m), "oci://")
			out[f] = append(out[f], ref)
		}
	}
	return out, nil
}
