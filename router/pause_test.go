//go:build unix

package router_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// TestAPausedProcessKeepsItsAnswer: the upstream sends a whole answer,
// and billed it, while orchat is paused (SIGSTOP here; a frozen VM or a
// stop of the world elsewhere) for longer than the idle timeout. On
// resume the answer is waiting in the socket. The idle timer, due during
// the pause, fires at once; it must not cut the stream and throw the
// answer away (which left the load test "billed 224 tokens, charged 0"):
// the whole answer is read and its usage reported, so it is charged.
//
// The process really stops: the test pauses itself through a child
// shell, after the upstream has written the answer and before the client
// reads it. It runs alone (not parallel), so no other test is paused.
func TestAPausedProcessKeepsItsAnswer(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh to pause the process")
	}
	served := make(chan struct{}, 1)
	// The answer comes 50 ms after the headers, so it waits in the
	// socket, not in what the client read along with the headers.
	sim := MustSim(t, openroutertest.Options{Latency: 50 * time.Millisecond, OnServed: func(openroutertest.Served) {
		select {
		case served <- struct{}{}:
		default:
		}
	}})
	const idle = 300 * time.Millisecond
	r := MustRouter(t, sim.URL(), func(c *router.Config) {
		c.IdleTimeout = idle
		c.HTTPClient = &http.Client{Transport: &pausingTransport{t: t, served: served, pause: 4 * idle}}
	})
	res, text, err := stream(t, r, chosenPlan("openai/gpt-5-mini"))
	if err != nil {
		t.Fatalf("the stream failed after the pause: %v (%s); got %q", err, bot.ErrorMessage(err), text)
	}
	if text == "" || res.Estimated || res.Cost <= 0 {
		t.Fatalf("text=%q estimated=%t cost=%d: the answer the upstream billed was not read whole", text, res.Estimated, res.Cost)
	}
}

// pausingTransport pauses the whole process once, on the first read of
// the first response body, after the upstream has finished writing it.
type pausingTransport struct {
	t      *testing.T
	served <-chan struct{}
	pause  time.Duration
	once   sync.Once
}

func (p *pausingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return res, err
	}
	res.Body = &pausingBody{ReadCloser: res.Body, p: p}
	return res, nil
}

type pausingBody struct {
	io.ReadCloser
	p *pausingTransport
}

func (b *pausingBody) Read(buf []byte) (int, error) {
	b.p.once.Do(func() {
		select {
		case <-b.p.served: // the whole answer is in the socket
		case <-time.After(10 * time.Second):
			b.p.t.Error("the simulator never finished the answer")
			return
		}
		sh := exec.CommandContext(context.Background(), "sh", "-c", `kill -STOP "$1"; sleep "$2"; kill -CONT "$1"`,
			"sh", strconv.Itoa(os.Getpid()), strconv.FormatFloat(b.p.pause.Seconds(), 'f', 3, 64))
		if out, err := sh.CombinedOutput(); err != nil {
			b.p.t.Errorf("pausing the process: %v %s", err, out)
		}
		// On resume the timer, long due, and this reader wake together;
		// let the timer go first, as it did in the failing load test
		// (a tenth of the idle timeout, well inside any re-arm).
		time.Sleep(b.p.pause / 40)
	})
	return b.ReadCloser.Read(buf)
}
