// Command train fits the auto router's tier model to the training part of
// the labelled prompts and writes its weight file. `go generate
// ./router/...` runs it; the same input and flags always give the same
// file.
//
//	go run ./router/internal/train -o router/internal/tiermodel/weights.bin router/testdata/tiers/train.txt
//	go run ./router/internal/train -cv 5 router/testdata/tiers/train.txt   # cross-validate, write nothing
//
// It never reads the held-out part: tuning is done by cross-validation on
// the training part.
package main

import (
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"strings"

	"github.com/orchat/orchat/router/internal/tiermodel"
	"github.com/orchat/orchat/router/internal/tierset"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	p, o := tiermodel.DefaultParams(), tiermodel.DefaultTrainOptions()
	out := fs.String("o", "", "write the weight file to `path`")
	cv := fs.Int("cv", 0, "cross-validate over `k` folds instead of writing weights")
	fs.IntVar(&p.Bits, "bits", p.Bits, "rows of the hashed table, as a power of two")
	fs.IntVar(&p.MinN, "minn", p.MinN, "shortest character n-gram")
	fs.IntVar(&p.MaxN, "maxn", p.MaxN, "longest character n-gram")
	fs.IntVar(&p.HeadBytes, "head", p.HeadBytes, "bytes read from the start of a message")
	fs.IntVar(&p.TailBytes, "tail", p.TailBytes, "bytes read from the end of a long message")
	fs.Float64Var(&p.ContextScale, "ctx", p.ContextScale, "weight of the turns before a follow-up")
	fs.IntVar(&o.Epochs, "epochs", o.Epochs, "passes over the examples")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "AdaGrad step")
	fs.Float64Var(&o.L2, "l2", o.L2, "weight decay")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the visiting order")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: train [flags] -o weights.bin train.txt (or -cv K train.txt)")
	}
	if strings.Contains(fs.Arg(0), "heldout") {
		return fmt.Errorf("%s: the held-out part is for evaluation only, never for training", fs.Arg(0))
	}
	items, err := tierset.LoadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	exs, ids := tiermodel.Examples(items)
	if *cv > 1 {
		return crossValidate(exs, ids, p, o, *cv)
	}
	if *out == "" {
		return fmt.Errorf("-o is required (or -cv K)")
	}
	m, err := tiermodel.Train(exs, p, o)
	if err != nil {
		return err
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "train: %d examples, %d weights (%d bits), wrote %s\n", len(exs), len(m.W), p.Bits, *out)
	return nil
}

// crossValidate trains k models, each without one fold (folds by a hash
// of the id), and prints the accuracy on the folds left out.
func crossValidate(exs []tiermodel.Example, ids []string, p tiermodel.Params, o tiermodel.TrainOptions, k int) error {
	fold := make([]int, len(exs))
	for i, id := range ids {
		h := fnv.New32a()
		h.Write([]byte(id))
		fold[i] = int(h.Sum32() % uint32(k))
	}
	var conf [tiermodel.NumClasses][tiermodel.NumClasses]int
	right := 0
	var wrong []string
	for f := range k {
		var train []tiermodel.Example
		for i, ex := range exs {
			if fold[i] != f {
				train = append(train, ex)
			}
		}
		m, err := tiermodel.Train(train, p, o)
		if err != nil {
			return err
		}
		for i, ex := range exs {
			if fold[i] != f {
				continue
			}
			s, _ := m.Score(ex.Input)
			got := s.Best()
			conf[ex.Class][got]++
			if got == ex.Class {
				right++
			} else {
				wrong = append(wrong, fmt.Sprintf("  %-14s want %-9s got %-9s (%.2f)", ids[i], tiermodel.Classes[ex.Class], tiermodel.Classes[got], s[got]))
			}
		}
	}
	fmt.Printf("%d-fold cross-validation: %d of %d right (%.1f %%)\n", k, right, len(exs), 100*float64(right)/float64(len(exs)))
	fmt.Printf("  %-10s", "")
	for _, c := range tiermodel.Classes {
		fmt.Printf(" %9s", c)
	}
	fmt.Println()
	for i, row := range conf {
		fmt.Printf("  %-10s", tiermodel.Classes[i])
		for _, n := range row {
			fmt.Printf(" %9d", n)
		}
		fmt.Println()
	}
	if os.Getenv("TRAIN_VERBOSE") != "" {
		fmt.Println(strings.Join(wrong, "\n"))
	}
	return nil
}
