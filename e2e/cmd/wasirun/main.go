// Command wasirun runs a GOOS=wasip1 program, such as a test binary, under
// wazero: the runtime the e2e host uses. It is the -exec runner that lets
// `go test` run a package's benchmarks inside WebAssembly:
//
//	GOOS=wasip1 GOARCH=wasm go test -exec "go run ./e2e/cmd/wasirun" -bench . ./filter/jwt
//
// The program sees the real clocks, the current directory (for testdata) and
// the environment variables named in WASIRUN_ENV (comma-separated).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wasirun module.wasm [args...]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1], os.Args[2:]))
}

func run(path string, args []string) int {
	ctx := context.Background()
	wasm, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasirun:", err)
		return 1
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)

	cwd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasirun:", err)
		return 1
	}
	cfg := wazero.NewModuleConfig().
		WithArgs(append([]string{path}, args...)...).
		WithStdout(os.Stdout).WithStderr(os.Stderr).WithStdin(os.Stdin).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithFSConfig(wazero.NewFSConfig().WithDirMount(cwd, cwd)).
		WithEnv("PWD", cwd)
	for _, name := range strings.Split(os.Getenv("WASIRUN_ENV"), ",") {
		if value, ok := os.LookupEnv(name); ok && name != "" {
			cfg = cfg.WithEnv(name, value)
		}
	}
	_, err = rt.InstantiateWithConfig(ctx, wasm, cfg)
	var exit *sys.ExitError
	switch {
	case errors.As(err, &exit):
		return int(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "wasirun:", err)
		return 1
	}
	return 0
}
