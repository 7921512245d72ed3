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
	// Timeouts bound what one client may hold (DefaultTimeouts); change
	// them before Serve.
	Timeouts Timeouts

	srv   *http.Server
	ln    net.Listener
	parts []Part
}

// Timeouts bound how long a client may keep a connection and its
// goroutine. In Slack's HTTP mode the server is public: without them a
// client that sends its body a byte at a time (or never) held a
// connection for as long as it liked, 150 of them 150 goroutines.
type Timeouts struct {
	// ReadHeader bounds the request line and headers; Read the whole
	// request, body included; Write the time from the end of the headers
	// to the end of the answer (it must outlast /readyz's checks, which
	// are given at most half of it); Idle a kept-alive connection waiting
	// for its next request.
	ReadHeader, Read, Write, Idle time.Duration
	// Body bounds reading the body of a request to a mounted endpoint,
	// from the end of its headers (Slack's requests are a few KB, sent at
	// once, and Slack gives up on an answer after 3 s).
	Body time.Duration
}

// DefaultTimeouts close a slow or silent client within 10 s (5 s for its
// headers; a Slack request's body has 3 s, the time Slack itself waits
// for an answer), and keep a scraper's idle connection for 30 s.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 15 * time.Second, Idle: 30 * time.Second, Body: 3 * time.Second}
}

// readyCheckTimeout bounds /readyz's checks, within half the write timeout.
const readyCheckTimeout = 5 * time.Second

// Listen listens on addr for a Server of mets and parts. extra mounts more
// handlers (Slack's HTTP mode) by pattern.
func Listen(addr string, mets *Metrics, parts []Part, extra map[string]http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %s: %w", addr, err)
	}
	o := &Server{ln: ln, parts: parts, Timeouts: DefaultTimeouts()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", o.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(mets.reg, promhttp.HandlerOpts{}))
	for path, h := range extra {
		mux.Handle(path, o.bodyDeadline(h))
	}
	o.srv = &http.Server{Handler: mux}
	return o, nil
}

// bodyDeadline gives a mounted endpoint's request Timeouts.Body to arrive
// whole: past it, reading the body fails (the handler answers, and the
// connection is closed).
func (o *Server) bodyDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Timeouts.Body > 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(o.Timeouts.Body))
		}
		h.ServeHTTP(w, r)
	})
}

// Addr is the address the server listens on.
func (o *Server) Addr() string { return o.ln.Addr().String() }

// Serve serves until Shutdown.
func (o *Server) Serve() error {
	t := o.Timeouts
	o.srv.ReadHeaderTimeout, o.srv.ReadTimeout, o.srv.WriteTimeout, o.srv.IdleTimeout = t.ReadHeader, t.Read, t.Write, t.Idle
	if err := o.srv.Serve(o.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, letting requests in flight finish.
func (o *Server) Shutdown(ctx context.Context) error { return o.srv.Shutdown(ctx) }

// ready answers /readyz: each part's state as JSON, 503 unless all are ok.
func (o *Server) ready(w http.ResponseWriter, r *http.Request) {
	limit := readyCheckTimeout
	if w := o.Timeouts.Write; w > 0 {
		limit = min(limit, w/2)
	}
	ctx, cancel := context.WithTimeout(r.Context(), limit)
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
