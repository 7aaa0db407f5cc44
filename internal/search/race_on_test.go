//go:build race

package search

// raceEnabled is true when the tests run under -race, which makes them 5 to
// 20 times slower: the randomized tests then run fewer cases (see
// propertyQueries).
const raceEnabled = true
