package tiermodel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/orchat/orchat/router/internal/tierset"
)

// Example is one labelled input for training.
type Example struct {
	Input Input
	Class int // index in Classes
}

// Examples turns labelled prompts into examples, skipping the tiers hard
// signals decide (vision, long, free); ids are the items' ids, in step.
func Examples(items []tierset.Item) (exs []Example, ids []string) {
	for _, it := range items {
		c := slices.Index(Classes[:], it.Tier)
		if c < 0 {
			continue
		}
		exs = append(exs, Example{Input: InputFrom(it.Messages("")), Class: c})
		ids = append(ids, it.ID)
	}
	return exs, ids
}

// TrainOptions steer the optimiser. The zero value is not useful; start
// from DefaultTrainOptions.
type TrainOptions struct {
	Epochs int
	// Rate is AdaGrad's step; L2 the weight decay per step.
	Rate, L2 float64
	// Seed fixes the order examples are visited in: the same examples,
	// options and seed give the same weights, bit for bit.
	Seed uint64
}

// DefaultTrainOptions are what `go generate` trains with.
func DefaultTrainOptions() TrainOptions {
	return TrainOptions{Epochs: 30, Rate: 0.1, L2: 1e-5, Seed: 17}
}

// feature is a hashed row and its value in one example.
type feature struct {
	row uint32
	val float64
}

// features returns the hashed rows and values of in, as training sees
// them.
func (p *Params) features(in Input) []feature {
	var rows [numGroups][]uint32
	s := sink{mask: 1<<p.Bits - 1, rows: &rows, lexTo: lexNone}
	p.extract(in, p.Scan(in), &s)
	var out []feature
	for g := range numGroups {
		v := p.groupScale(g, len(rows[g]))
		for _, r := range rows[g] {
			out = append(out, feature{r, v})
		}
	}
	return out
}

// Train fits a model to examples: softmax regression by AdaGrad over the
// examples in a seeded order, then weights quantized to int16. Products
// are rounded explicitly so no platform fuses them, which keeps the
// result the same on every machine.
func Train(examples []Example, p Params, o TrainOptions) (*Model, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("tiermodel: no examples")
	}
	if p.Bits < 8 || p.Bits > 24 {
		return nil, fmt.Errorf("tiermodel: bits=%d, want 8 to 24", p.Bits)
	}
	feats := make([][]feature, len(examples))
	for i, ex := range examples {
		if ex.Class < 0 || ex.Class >= NumClasses {
			return nil, fmt.Errorf("tiermodel: example %d has class %d", i, ex.Class)
		}
		feats[i] = p.features(ex.Input)
	}
	rows := 1 << p.Bits
	w := make([]float64, rows*NumClasses)
	g2 := make([]float64, rows*NumClasses) // AdaGrad's sum of squared gradients
	order := make([]int, len(examples))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x6f72636861740a))
	var z Scores
	for range o.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			f := feats[i]
			z = Scores{}
			for _, ft := range f {
				base := int(ft.row) * NumClasses
				for c := range NumClasses {
					z[c] += float64(w[base+c] * ft.val)
				}
			}
			prob := softmax(z)
			for c := range NumClasses {
				grad := prob[c]
				if c == examples[i].Class {
					grad -= 1
				}
				for _, ft := range f {
					k := int(ft.row)*NumClasses + c
					gk := float64(grad*ft.val) + float64(o.L2*w[k])
					g2[k] += float64(gk * gk)
					w[k] -= float64(o.Rate*gk) / (math.Sqrt(g2[k]) + 1e-8)
				}
			}
		}
	}
	return quantize(p, w), nil
}

// quantize turns float weights into int16 with one scale.
func quantize(p Params, w []float64) *Model {
	hi := 0.0
	for _, v := range w {
		hi = max(hi, math.Abs(v))
	}
	m := &Model{Params: p, W: make([]int16, len(w)), Scale: 1}
	if hi > 0 {
		m.Scale = hi / math.MaxInt16
	}
	for i, v := range w {
		m.W[i] = int16(math.Round(v / m.Scale))
	}
	return m
}
