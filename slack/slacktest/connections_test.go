package slacktest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orchat/orchat/slack/slacktest"
)

// app is one process's Socket Mode connection, opened the way slack-go
// opens it (apps.connections.open with the app token, then the socket),
// that records the envelopes it is sent and acknowledges them unless told
// not to.
type app struct {
	c    *websocket.Conn
	mu   sync.Mutex
	got  []envelope
	mute bool
}

type envelope struct {
	ID    string `json:"envelope_id"`
	Type  string `json:"type"`
	Retry int    `json:"retry_attempt"`
}

func connect(t *testing.T, s *slacktest.Server, ack bool) *app {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"apps.connections.open", strings.NewReader(url.Values{}.Encode()))
	req.Header.Set("Authorization", "Bearer "+s.AppToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var open struct {
		OK  bool   `json:"ok"`
		URL string `json:"url"`
	}
	err = json.NewDecoder(res.Body).Decode(&open)
	res.Body.Close()
	if err != nil || !open.OK {
		t.Fatalf("apps.connections.open: %+v %v", open, err)
	}
	c, _, err := websocket.DefaultDialer.Dial(open.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{c: c, mute: !ack}
	t.Cleanup(func() { c.Close() })
	go func() {
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			var e envelope
			if json.Unmarshal(data, &e) != nil || e.ID == "" {
				continue // hello, disconnect
			}
			a.mu.Lock()
			a.got = append(a.got, e)
			mute := a.mute
			a.mu.Unlock()
			if !mute {
				_ = c.WriteJSON(map[string]any{"envelope_id": e.ID})
			}
		}
	}()
	return a
}

func (a *app) envelopes() []envelope {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]envelope(nil), a.got...)
}

func waitOpen(t *testing.T, s *slacktest.Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.OpenConnections() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", s.OpenConnections(), n)
		}
	}
}

// TestSeveralConnections: an app with one Socket Mode connection per
// process gets its envelopes spread across them, as Slack spreads them;
// one that a connection does not acknowledge, or that dies with its
// connection, comes again over another with retry_attempt raised.
func TestSeveralConnections(t *testing.T) {
	t.Run("SpreadAcrossConnections", func(t *testing.T) {
		s := slacktest.MustStart(t, slacktest.Options{NoEcho: true})
		apps := []*app{connect(t, s, true), connect(t, s, true), connect(t, s, true)}
		waitOpen(t, s, 3)
		for i := range 30 {
			d := s.Say(slacktest.Post{User: "U1", Channel: "C1", Text: "hello " + strings.Repeat("!", i)})
			if d.Attempts != 1 || d.Conn == 0 {
				t.Fatalf("delivery %d: attempts=%d conn=%d, want one attempt acknowledged", i, d.Attempts, d.Conn)
			}
		}
		for i, a := range apps {
			if n := len(a.envelopes()); n != 10 {
				t.Errorf("connection %d got %d of 30 envelopes, want 10 (spread evenly)", i+1, n)
			}
		}
	})

	t.Run("UnacknowledgedGoesToAnotherConnection", func(t *testing.T) {
		s := slacktest.MustStart(t, slacktest.Options{NoEcho: true})
		mute := connect(t, s, false)
		waitOpen(t, s, 1)
		live := connect(t, s, true)
		waitOpen(t, s, 2)
		start := time.Now()
		d := s.Say(slacktest.Post{User: "U1", Channel: "C1", Text: "hello"})
		if d.Attempts != 2 || d.Conn != 2 {
			t.Fatalf("attempts=%d conn=%d, want the second attempt acknowledged by connection 2", d.Attempts, d.Conn)
		}
		if took := time.Since(start); took < 3*time.Second {
			t.Errorf("sent again after %s, want after Slack's 3 s", took)
		}
		if got := mute.envelopes(); len(got) != 1 || got[0].Retry != 0 {
			t.Errorf("the silent connection got %+v, want the first attempt", got)
		}
		if got := live.envelopes(); len(got) != 1 || got[0].Retry != 1 {
			t.Errorf("the other connection got %+v, want the retry (retry_attempt 1)", got)
		}
	})

	t.Run("DeadConnectionsEnvelopeGoesToAnother", func(t *testing.T) {
		s := slacktest.MustStart(t, slacktest.Options{NoEcho: true})
		dying := connect(t, s, false)
		waitOpen(t, s, 1)
		live := connect(t, s, true)
		waitOpen(t, s, 2)
		go func() {
			for len(dying.envelopes()) == 0 {
				time.Sleep(time.Millisecond)
			}
			dying.c.Close() // the process is killed before it acknowledges
		}()
		start := time.Now()
		d := s.Say(slacktest.Post{User: "U1", Channel: "C1", Text: "hello"})
		if d.Attempts != 2 || d.Conn != 2 {
			t.Fatalf("attempts=%d conn=%d, want the retry acknowledged by connection 2", d.Attempts, d.Conn)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("sent again after %s, want at once when the connection ends", took)
		}
		if got := live.envelopes(); len(got) != 1 || got[0].Retry != 1 {
			t.Errorf("the other connection got %+v, want the retry", got)
		}
		waitOpen(t, s, 1)
	})
}
