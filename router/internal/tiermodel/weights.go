package tiermodel

import (
	_ "embed"
	"sync"
)

// The weights are trained from router/testdata/tiers/train.txt only; the
// held-out part is never read here. Regenerate after changing the
// training set or the features: go generate ./router/...
//
//go:generate go run ../train -o weights.bin ../../testdata/tiers/train.txt

//go:embed weights.bin
var weights []byte

// Default returns the embedded model, decoded once.
var Default = sync.OnceValue(func() *Model {
	var m Model
	if err := m.UnmarshalBinary(weights); err != nil {
		panic("router/internal/tiermodel: the embedded weights are broken (run go generate ./router/...): " + err.Error())
	}
	return &m
})
