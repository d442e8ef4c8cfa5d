package wasmhost

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Server is a Host serving HTTP on a listener.
type Server struct {
	// URL is the base URL, e.g. "http://127.0.0.1:41234".
	URL  string
	srv  *http.Server
	done chan error
}

// Start serves h.Handler() on addr ("127.0.0.1:0" picks a free port) until
// the Server is closed.
func (h *Host) Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:  "http://" + ln.Addr().String(),
		srv:  &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(codecListener{ln}) }()
	return s, nil
}

// Close stops the server, waiting up to five seconds for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
