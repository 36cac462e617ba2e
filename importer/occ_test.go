package importer

import (
	"crypto/sha256"
	"testing"
)

func TestDerivedIDsInAForgedBusySecond(t *testing.T) {
	var o occurrences
	seen := map[string]bool{}
	sum := func(i int) [32]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)}) }
	// More distinct messages in one second than the counts keep, each
	// twice: every id stays distinct and memory stays bounded.
	n := maxOccKeys + 1000
	for i := 0; i < n; i++ {
		for rep := 0; rep < 2; rep++ {
			id := o.assign("g", 1731068105, sum(i))
			if seen[id] {
				t.Fatalf("message %d (repeat %d) got an id already given", i, rep)
			}
			seen[id] = true
		}
		if len(o.groups["g"].counts) > maxOccKeys {
			t.Fatalf("%d counts kept", len(o.groups["g"].counts))
		}
	}
	// The same sequence again gives the same ids (re-imports deduplicate).
	var again occurrences
	for i := 0; i < n; i++ {
		for rep := 0; rep < 2; rep++ {
			if id := again.assign("g", 1731068105, sum(i)); !seen[id] {
				t.Fatalf("message %d: a different id on the second pass", i)
			}
		}
	}
}
