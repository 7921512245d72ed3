package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Part is one part the bot needs to serve, for /readyz: its name and a
// check that says what is wrong (nil: ready).
type Part struct {
	Name  string
	Check func(ctx context.Context) error
	// Report, when set, is what /readyz shows for a ready part in place of
	// "ok" (the key's remaining credit).
	Report func() string
}

// Connected turns an adapter's Connected into a readiness check.
func Connected(connected func() bool) func(context.Context) error {
	return func(context.Context) error {
		if !connected() {
			return errors.New("not connected")
		}
		return nil
	}
}

// Server serves /healthz, /readyz and /metrics (and, in Slack's HTTP mode,
// Slack's endpoints) on http.addr.
type Server struct {
	srv   *http.Server
	ln    net.Listener
	parts []Part
}

// Listen listens on addr for a Server of mets and parts. extra mounts more
// handlers (Slack's HTTP mode) by pattern.
func Listen(addr string, mets *Metrics, parts []Part, extra map[string]http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %s: %w", addr, err)
	}
	o := &Server{ln: ln, parts: parts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", o.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(mets.reg, promhttp.HandlerOpts{}))
	for path, h := range extra {
		mux.Handle(path, h)
	}
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return o, nil
}

// Addr is the address the server listens on.
func (o *Server) Addr() string { return o.ln.Addr().String() }

// Serve serves until Shutdown.
func (o *Server) Serve() error {
	if err := o.srv.Serve(o.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, letting requests in flight finish.
func (o *Server) Shutdown(ctx context.Context) error { return o.srv.Shutdown(ctx) }

// ready answers /readyz: each part's state as JSON, 503 unless all are ok.
func (o *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	states := map[string]string{}
	ok := true
	for _, p := range o.parts {
		if err := p.Check(ctx); err != nil {
			states[p.Name] = err.Error()
			ok = false
		} else if p.Report != nil {
			states[p.Name] = p.Report()
		} else {
			states[p.Name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ready": ok, "parts": states})
}
