// Command upstream runs the demo upstream service (see e2e/upstream) until
// SIGINT or SIGTERM, then drains in-flight requests for up to five seconds.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/e2e/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:10001", "address to listen on")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	srv := &http.Server{Handler: upstream.New(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Printf("upstream: demo upstream listening on http://%s", ln.Addr())

	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("upstream: %v", err)
		}
	case <-ctx.Done():
		log.Printf("upstream: shutting down")
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			log.Printf("upstream: shutdown: %v", err)
		}
	}
}
