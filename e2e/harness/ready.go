package harness

import (
	"fmt"
	"net/http"
	"time"
)

// pollReady asks probe every interval until it answers 200, the process
// behind it exits (done closes) or limit passes; it returns the last
// problem seen.
func pollReady(done <-chan struct{}, limit, interval time.Duration, probe func(*http.Client) (*http.Response, error)) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			return fmt.Errorf("exited")
		default:
		}
		resp, err := probe(client)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}
