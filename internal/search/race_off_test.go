//go:build !race

package search

// raceEnabled is true when the tests run under -race (see race_on_test.go).
const raceEnabled = false
