package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/console"
	"github.com/orchat/orchat/stack/stacktest"
)

// harness drives the console through a pipe, one JSON line per finished
// message back.
type harness struct {
	st   *stacktest.Stack
	in   *io.PipeWriter
	out  *lines
	done chan struct{}
	sent int
}

func (h *harness) Start(t *testing.T, st *stacktest.Stack) {
	h.st = st
	r, w := io.Pipe()
	h.in, h.out, h.done = w, &lines{}, make(chan struct{})
	con := console.New(console.Options{In: r, Out: h.out, User: "console:alice", JSON: true, MultiUser: true, FilesDir: t.TempDir()})
	go func() {
		defer close(h.done)
		if err := con.Run(context.Background(), st.Handler); err != nil {
			t.Errorf("console: %v", err)
		}
	}()
	t.Cleanup(func() {
		w.Close()
		<-h.done
	})
}

func (h *harness) Identity(user string) bot.Identity { return bot.Identity("console:" + user) }

// WaitsItsTurn: in the console a line over the rate limit waits.
func (h *harness) WaitsItsTurn() {}

// say writes one line as user and returns the messages printed for it.
func (h *harness) say(t *testing.T, user, line string) []stacktest.Seen {
	t.Helper()
	mark := h.out.count()
	if _, err := io.WriteString(h.in, user+"> "+line+"\n"); err != nil {
		t.Fatal(err)
	}
	h.sent++
	h.st.Handler.Await(t, h.sent)
	var seen []stacktest.Seen
	for _, l := range h.out.since(mark) {
		var m struct {
			Kind      string   `json:"kind"`
			Text      string   `json:"text"`
			Footer    string   `json:"footer"`
			Private   bool     `json:"private"`
			Choices   []string `json:"choices"`
			Reasoning string   `json:"reasoning"`
			Images    []string `json:"images"`
			Citations []struct {
				URL, Title string
			} `json:"citations"`
			Panels []struct {
				Label, Model, Text, Error, Status string
			} `json:"panels"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("console printed a line that is not JSON: %q", l)
		}
		s := stacktest.Seen{Text: m.Text, Footer: m.Footer, Private: m.Private, Buttons: m.Choices}
		if m.Reasoning != "" {
			s.Text += "\n💭 " + m.Reasoning // dimmed on a terminal
		}
		for i, c := range m.Citations {
			s.Text += fmt.Sprintf("\n[%d] %s — %s", i+1, c.Title, c.URL)
		}
		for _, p := range m.Images {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("the console named an image it did not save: %v", err)
			}
			s.Files = append(s.Files, stacktest.File{Name: filepath.Base(p), Data: data})
		}
		for _, p := range m.Panels {
			s.Text += "\n" + p.Label + " · " + p.Model + " · " + p.Status + "\n" + p.Text + p.Error
		}
		seen = append(seen, s)
	}
	return seen
}

func (h *harness) Mention(t *testing.T, user, text string) []stacktest.Seen {
	return h.say(t, user, text)
}

func (h *harness) Command(t *testing.T, user, name string, options map[string]string) []stacktest.Seen {
	line := "/" + name
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "prompt" {
			line += " " + k + ":" + options[k]
		}
	}
	if p, ok := options["prompt"]; ok {
		line += " " + p
	}
	return h.say(t, user, line)
}

// Attach writes the files to a folder and names them with file:// words.
func (h *harness) Attach(t *testing.T, user, text string, files ...stacktest.File) []stacktest.Seen {
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		text += " file://" + p
	}
	return h.say(t, user, text)
}

func (h *harness) Vote(t *testing.T, user, compareID, choice string) []stacktest.Seen {
	return h.say(t, user, "/vote "+compareID+" "+choice)
}

func TestPlatformBehaviour(t *testing.T) {
	stacktest.Run(t, func(t *testing.T) stacktest.Harness { return &harness{} })
}

// lines collects what the console prints, line by line.
type lines struct {
	mu   sync.Mutex
	buf  strings.Builder
	list []string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	s := l.buf.String()
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		l.list = append(l.list, s[:i])
		s = s[i+1:]
	}
	l.buf.Reset()
	l.buf.WriteString(s)
	return len(p), nil
}

func (l *lines) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.list)
}

func (l *lines) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.list[n:]...)
}
