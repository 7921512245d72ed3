// Package tiermodel is the auto router's text classifier: multinomial
// logistic regression over hashed word unigrams and bigrams, character
// n-grams and a few structural signals (code fences, code-like lines,
// equations, length, conversation), trained offline from
// router/testdata/tiers/train.txt. It decides between the tiers that
// depend on what a prompt asks (fast, general, code, reasoning); the
// router decides vision, long and free from hard signals first.
//
// Scoring a message reads at most HeadBytes + TailBytes of it, hashes
// each feature into a table of 2^Bits rows of int16 weights and sums;
// it allocates nothing. Weights are regenerated with `go generate` (see
// weights.go) and embedded.
package tiermodel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Classes are the tiers the model scores, in the order of its outputs.
var Classes = [NumClasses]string{"fast", "general", "code", "reasoning"}

// NumClasses is len(Classes).
const NumClasses = 4

// Params are the feature settings a model was trained with; they travel
// in the weight file so scoring always matches training.
type Params struct {
	Bits      int // the hashed table has 2^Bits rows
	MinN      int // character n-grams from MinN...
	MaxN      int // ...to MaxN runes
	HeadBytes int // the first HeadBytes of a message are read...
	TailBytes int // ...and its last TailBytes
	// ContextScale weighs the words of the turns before a follow-up.
	ContextScale float64
}

// DefaultParams are the settings `go generate` trains with.
func DefaultParams() Params {
	return Params{Bits: 14, MinN: 3, MaxN: 3, HeadBytes: 512, TailBytes: 256, ContextScale: 0.6}
}

// Model is a trained classifier.
type Model struct {
	Params
	// W holds 2^Bits rows of NumClasses weights, quantized: a weight is
	// W[i] * Scale.
	W     []int16
	Scale float64
}

// Scores are the model's probabilities per class, summing to one.
type Scores [NumClasses]float64

// Best returns the index of the most probable class.
func (s Scores) Best() int {
	best := 0
	for c := 1; c < NumClasses; c++ {
		if s[c] > s[best] {
			best = c
		}
	}
	return best
}

// sink collects features: scoring sums the weights of every group,
// training records the hashed rows.
type sink struct {
	w    []int16
	mask uint32
	sums [numGroups][NumClasses]int64
	n    [numGroups]int
	rows *[numGroups][]uint32 // training only
	// lex counts the lexicon hits of the message and of the context;
	// words() counts into lex[lexTo].
	lex   [2][numLex]int
	lexTo int
}

// Where words() counts lexicon hits.
const (
	lexMessage = iota
	lexContext
	lexNone
)

func (s *sink) add(group int, h uint32) {
	row := h & s.mask
	s.n[group]++
	if s.rows != nil {
		s.rows[group] = append(s.rows[group], row)
		return
	}
	k := int(row) * NumClasses
	for c, v := range s.w[k : k+NumClasses : k+NumClasses] {
		s.sums[group][c] += int64(v)
	}
}

// groupScale is the value of one feature of a group with n features.
func (p *Params) groupScale(group, n int) float64 {
	if n == 0 {
		return 0
	}
	switch group {
	case groupText:
		return 1 / math.Sqrt(float64(n))
	case groupContext:
		return p.ContextScale / math.Sqrt(float64(n))
	}
	return 1
}

// Score returns the class probabilities of an input and the signals it
// read.
func (m *Model) Score(in Input) (Scores, Signals) {
	sig := m.Scan(in)
	s := sink{w: m.W, mask: 1<<m.Bits - 1, lexTo: lexNone}
	m.extract(in, sig, &s)
	var z Scores
	for g := range numGroups {
		k := m.groupScale(g, s.n[g]) * m.Scale
		for c := range NumClasses {
			z[c] += float64(s.sums[g][c]) * k
		}
	}
	return softmax(z), sig
}

func softmax(z Scores) Scores {
	hi := z[0]
	for _, v := range z[1:] {
		hi = max(hi, v)
	}
	var sum float64
	for c := range z {
		z[c] = math.Exp(z[c] - hi)
		sum += z[c]
	}
	for c := range z {
		z[c] /= sum
	}
	return z
}

// The weight file: magic, version, the Params, the scale, then the int16
// weights, all little-endian.
var magic = [8]byte{'o', 'r', 'c', 'h', 't', 'i', 'e', 'r'}

const fileVersion = 1

// MarshalBinary writes the model's weight file.
func (m *Model) MarshalBinary() ([]byte, error) {
	if len(m.W) != NumClasses<<m.Bits {
		return nil, fmt.Errorf("tiermodel: %d weights for %d bits", len(m.W), m.Bits)
	}
	b := append([]byte(nil), magic[:]...)
	for _, v := range []uint32{fileVersion, uint32(m.Bits), uint32(m.MinN), uint32(m.MaxN), uint32(m.HeadBytes), uint32(m.TailBytes)} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.ContextScale))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.Scale))
	for _, w := range m.W {
		b = binary.LittleEndian.AppendUint16(b, uint16(w))
	}
	return b, nil
}

// UnmarshalBinary reads a weight file written by MarshalBinary.
func (m *Model) UnmarshalBinary(b []byte) error {
	const header = 8 + 6*4 + 2*8
	if len(b) < header || [8]byte(b[:8]) != magic {
		return errors.New("tiermodel: not a tier model weight file")
	}
	u := func(i int) int { return int(binary.LittleEndian.Uint32(b[8+4*i:])) }
	if v := u(0); v != fileVersion {
		return fmt.Errorf("tiermodel: weight file version %d, want %d (run go generate ./router/...)", v, fileVersion)
	}
	p := Params{Bits: u(1), MinN: u(2), MaxN: u(3), HeadBytes: u(4), TailBytes: u(5),
		ContextScale: math.Float64frombits(binary.LittleEndian.Uint64(b[32:]))}
	if p.Bits < 8 || p.Bits > 24 || p.MinN < 1 || p.MaxN < p.MinN || p.MaxN > 8 {
		return fmt.Errorf("tiermodel: implausible parameters %+v", p)
	}
	scale := math.Float64frombits(binary.LittleEndian.Uint64(b[40:]))
	rest := b[header:]
	if len(rest) != 2*NumClasses<<p.Bits {
		return fmt.Errorf("tiermodel: %d bytes of weights, want %d", len(rest), 2*NumClasses<<p.Bits)
	}
	w := make([]int16, NumClasses<<p.Bits)
	for i := range w {
		w[i] = int16(binary.LittleEndian.Uint16(rest[2*i:]))
	}
	*m = Model{Params: p, W: w, Scale: scale}
	return nil
}
