package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/console"
	"github.com/orchat/orchat/stack/stacktest"
)

// TestScriptLinesWaitTheirTurn: `orchat console --json < questions.txt`
// with more quick lines than the rate limit's burst answers every line (a
// line over the limit waits its turn) instead of refusing the sixth on. A
// terminal is told once; a script's JSON holds only its answers.
func TestScriptLinesWaitTheirTurn(t *testing.T) {
	const n = 5
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "question number %d\n", i)
	}
	for _, tt := range []struct {
		name       string
		json, live bool
	}{{"JSON", true, false}, {"Terminal", false, true}} {
		t.Run(tt.name, func(t *testing.T) {
			// A burst of 2 and a token every 300 ms: lines 3 to 5 come
			// faster than that (an answer takes a few tens of ms here).
			st := stacktest.MustOpen(t, stacktest.Options{Limit: bot.RateLimit{PerMinute: 200, Burst: 2}})
			var out strings.Builder
			con := console.New(console.Options{In: strings.NewReader(in.String()), Out: &out, User: "console:ann", JSON: tt.json, Live: tt.live})
			if err := con.Run(context.Background(), st.Handler); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if strings.Contains(got, "faster than this bot allows") {
				t.Fatalf("a line was refused by the rate limit:\n%s", got)
			}
			answers := 0
			if tt.json {
				for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
					var m struct{ Kind, Text string }
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Fatalf("not JSON: %q", l)
					}
					if m.Kind == "reply" {
						answers++
					}
					if strings.Contains(m.Text, "waits its turn") {
						t.Fatalf("the wait notice reached a script's JSON: %q", l)
					}
				}
			} else {
				answers = strings.Count(got, "You said: question number")
				if c := strings.Count(got, "each waits its turn"); c != 1 {
					t.Fatalf("the terminal was told %d times that lines wait, want once:\n%s", c, got)
				}
			}
			if answers != n {
				t.Fatalf("%d of %d lines were answered:\n%s", answers, n, got)
			}
		})
	}
}
