//go:build race

package importer

// raceEnabled: the race detector makes parsing ~15 times slower; tests
// that are about volume, not concurrency, scale down under it.
const raceEnabled = true
