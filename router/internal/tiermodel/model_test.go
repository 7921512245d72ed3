package tiermodel_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/orchat/orchat/router/internal/tiermodel"
	"github.com/orchat/orchat/router/internal/tierset"
)

// The embedded weights are what `go generate` makes from the training
// part today: editing the prompts or the features without regenerating
// fails here.
func TestWeightsAreGenerated(t *testing.T) {
	items, err := tierset.LoadFile("../../testdata/tiers/train.txt")
	if err != nil {
		t.Fatal(err)
	}
	exs, _ := tiermodel.Examples(items)
	m, err := tiermodel.Train(exs, tiermodel.DefaultParams(), tiermodel.DefaultTrainOptions())
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("weights.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("weights.bin is not what the training set and features give: run go generate ./router/...")
	}
}

func TestScore(t *testing.T) {
	m := tiermodel.Default()
	if m.Params != tiermodel.DefaultParams() {
		t.Fatalf("embedded params %+v, want %+v", m.Params, tiermodel.DefaultParams())
	}
	for _, tt := range []struct {
		in   tiermodel.Input
		want string
	}{
		// Kinds of prompt issue 17 saw the keyword router send to the
		// fast tier. The first two are in the training part; the others
		// are in neither part.
		{tiermodel.Input{Text: "Implement a thread-safe LRU cache in Rust", Turns: 1}, "code"},
		{tiermodel.Input{Text: "Write a Go function that reverses a UTF-8 string", Turns: 1}, "code"},
		{tiermodel.Input{Text: "Write a product description for a bamboo cutting board, about 60 words", Turns: 1}, "general"},
		{tiermodel.Input{Text: "Summarise the main arguments for a four-day week in bullet points", Turns: 1}, "general"},
		{tiermodel.Input{Text: "A store sells apples at 3 for $2 and pears at $1 each. Tom buys 14 fruits for $12. How many pears did he buy?", Turns: 1}, "reasoning"},
		{tiermodel.Input{Text: "thanks!!", Turns: 1}, "fast"},
		{tiermodel.Input{Text: "wie spät ist es in tokio", Turns: 1}, "fast"},
	} {
		s, _ := m.Score(tt.in)
		if got := tiermodel.Classes[s.Best()]; got != tt.want {
			t.Errorf("%q: %s (%v), want %s", tt.in.Text, got, s, tt.want)
		}
		var sum float64
		for _, p := range s {
			if p < 0 || p > 1 {
				t.Fatalf("%q: probability %v", tt.in.Text, p)
			}
			sum += p
		}
		if sum < 0.999 || sum > 1.001 {
			t.Fatalf("%q: probabilities sum to %v", tt.in.Text, sum)
		}
	}
}

// A follow-up is read with the turns before it.
func TestScoreFollowUp(t *testing.T) {
	m := tiermodel.Default()
	in := tiermodel.Input{Text: "and in python?", Turns: 3,
		Context: []string{"Use `sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })`.", "how do i sort a slice in go"}}
	s, sig := m.Score(in)
	if !sig.FollowUp || !sig.CodeContext || tiermodel.Classes[s.Best()] != "code" {
		t.Fatalf("scores %v signals %+v, want a code follow-up", s, sig)
	}
	alone, _ := m.Score(tiermodel.Input{Text: "and in python?", Turns: 1})
	if alone[2] >= s[2] {
		t.Fatalf("the code context did not raise the code score: %v alone, %v with it", alone, s)
	}
}

func TestSignals(t *testing.T) {
	p := tiermodel.DefaultParams()
	sig := p.Scan(tiermodel.Input{Text: "```go\nfunc f() {\n\treturn\n}\n```\nwhy?\nx + 1 = 3", Turns: 1})
	if !sig.Fences || sig.CodeLines < 2 || sig.Equations != 1 || sig.FollowUp {
		t.Fatalf("signals %+v", sig)
	}
	// Only the head and tail of a long paste are read, but the length
	// is the whole message's.
	long := strings.Repeat("a line of a log;\n", 1000)
	if sig := p.Scan(tiermodel.Input{Text: long}); sig.Bytes != len(long) || sig.CodeLines > 100 {
		t.Fatalf("signals %+v of a %d-byte paste", sig, len(long))
	}
}

func TestScoreAllocatesNothing(t *testing.T) {
	m := tiermodel.Default()
	for name, in := range benchInputs {
		if n := testing.AllocsPerRun(100, func() { m.Score(in) }); n != 0 {
			t.Errorf("%s: %v allocations per Score", name, n)
		}
	}
}

func TestWeightFile(t *testing.T) {
	m := tiermodel.Default()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back tiermodel.Model
	if err := back.UnmarshalBinary(b); err != nil || back.Params != m.Params || back.Scale != m.Scale || len(back.W) != len(m.W) {
		t.Fatalf("round trip: %v %+v", err, back.Params)
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want string
	}{
		{"Empty", nil, "not a tier model weight file"},
		{"NotOurs", []byte("PK\x03\x04 a zip file, say, with more bytes than a header needs"), "not a tier model weight file"},
		{"Truncated", b[:len(b)-2], "bytes of weights"},
		{"OtherVersion", append(append([]byte(nil), b[:8]...), append([]byte{9, 0, 0, 0}, b[12:]...)...), "version 9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m tiermodel.Model
			if err := m.UnmarshalBinary(tt.b); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want %q", err, tt.want)
			}
		})
	}
}

func TestTrainRefusesBadInput(t *testing.T) {
	if _, err := tiermodel.Train(nil, tiermodel.DefaultParams(), tiermodel.DefaultTrainOptions()); err == nil {
		t.Fatal("trained on nothing")
	}
	bad := []tiermodel.Example{{Input: tiermodel.Input{Text: "hi"}, Class: 7}}
	if _, err := tiermodel.Train(bad, tiermodel.DefaultParams(), tiermodel.DefaultTrainOptions()); err == nil {
		t.Fatal("trained on class 7")
	}
}

var benchInputs = map[string]tiermodel.Input{
	"Short":    {Text: "hi! how are you?", Turns: 1},
	"Code":     {Text: "```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\nWhy does this not compile? I get an undefined: fmt error.", Turns: 1},
	"Essay":    {Text: strings.Repeat("Tell me about the history of the Hanseatic League and its cities. ", 8), Turns: 1},
	"Paste":    {Text: strings.Repeat("2026-03-01T10:00:00Z ERROR worker-3 connection reset by peer (retry 4)\n", 200) + "why does this keep happening?", Turns: 1},
	"FollowUp": {Text: "and in Rust?", Context: []string{"You need to import fmt.", "```go\nfunc main() { fmt.Println(\"hi\") }\n```\nwhy does this not compile?"}, Turns: 3},
	"Japanese": {Text: "Pythonでリストの重複を削除して順番はそのままにする方法を教えてください。できれば計算量も。", Turns: 1},
}

// BenchmarkScore: one classification of a message, by kind of message.
func BenchmarkScore(b *testing.B) {
	m := tiermodel.Default()
	for name, in := range benchInputs {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in.Text)))
			b.ReportAllocs()
			for b.Loop() {
				m.Score(in)
			}
		})
	}
}
