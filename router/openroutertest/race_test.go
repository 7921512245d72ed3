//go:build race

package openroutertest_test

const raceEnabled = true
