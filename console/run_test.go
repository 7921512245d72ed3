package console_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/console"
)

type handlerFunc func(ctx context.Context, ev bot.Event, out bot.Output) error

func (f handlerFunc) Handle(ctx context.Context, ev bot.Event, out bot.Output) error {
	return f(ctx, ev, out)
}

// eofReader signals when its input has run out.
type eofReader struct {
	r    io.Reader
	once sync.Once
	eof  chan struct{}
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// TestRunShutdownAfterEndOfInput: `orchat console < questions.txt` hit by
// SIGTERM while an answer is still streaming returns at once, so the
// engine's drain (shutdown_timeout) decides, instead of waiting for the
// answer however long it takes.
func TestRunShutdownAfterEndOfInput(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := handlerFunc(func(context.Context, bot.Event, bot.Output) error {
		close(started)
		<-release
		return nil
	})
	in := &eofReader{r: strings.NewReader("tell me a long story\n"), eof: make(chan struct{})}
	con := console.New(console.Options{In: in, Out: io.Discard, User: "console:alice"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- con.Run(ctx, h) }()
	<-started
	<-in.eof
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run kept waiting for the answer in flight after the shutdown began")
	}
}

// TestMultiUserPrefixNeedsAValidName: in --multi-user mode only "name> "
// with a valid console name changes the speaker; any other line with "> "
// in it is the default user's question, not an internal error.
func TestMultiUserPrefixNeedsAValidName(t *testing.T) {
	var mu sync.Mutex
	got := map[string]bot.Identity{}
	h := handlerFunc(func(_ context.Context, ev bot.Event, _ bot.Output) error {
		mu.Lock()
		defer mu.Unlock()
		got[ev.Text] = ev.Identity
		return nil
	})
	con := console.New(console.Options{In: strings.NewReader("bob> hi\nwhat?> is this\n"), Out: io.Discard, User: "console:alice", MultiUser: true})
	if err := con.Run(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if got, want := got["hi"], bot.Identity("console:bob"); got != want {
		t.Errorf("\"bob> hi\" came from %q, want %q", got, want)
	}
	if got, want := got["what?> is this"], bot.Identity("console:alice"); got != want {
		t.Errorf("\"what?> is this\" came from %q, want %q (as typed)", got, want)
	}
}

// TestLongLineRefusedAndReadingGoesOn: a line over 4 MiB is refused with a
// message, and the lines after it are still answered (it used to end the
// input silently, exit 0, the rest dropped).
func TestLongLineRefusedAndReadingGoesOn(t *testing.T) {
	var mu sync.Mutex
	var got []string
	h := handlerFunc(func(_ context.Context, ev bot.Event, _ bot.Output) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev.Text)
		return nil
	})
	long := strings.Repeat("x", 5<<20)
	in := "before\n" + long + "\r\nafter\n" + strings.Repeat("y", console.MaxLineBytes) + "\nlast without newline"
	var out strings.Builder
	con := console.New(console.Options{In: strings.NewReader(in), Out: &out, User: "console:alice"})
	if err := con.Run(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	want := []string{"before", "after", strings.Repeat("y", console.MaxLineBytes), "last without newline"}
	if len(got) != len(want) {
		t.Fatalf("the handler got %d lines, want %d: %.40q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d is %.40q, want %.40q", i, got[i], want[i])
		}
	}
	if msg := "That line is 5.0 MiB long, and a line may be up to 4 MiB, so it was not sent."; !strings.Contains(out.String(), msg) {
		t.Fatalf("want %q; printed:\n%.400s", msg, out.String())
	}
}
