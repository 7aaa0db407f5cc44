package segment

import (
	"slices"
	"sort"
	"strings"
)

// DomainID returns the id of the domain dictionary entry equal to name,
// false when there is none. A reader opened with OpenOptions.IndexDomains
// answers by a binary search of the ids it sorted by name at open; any
// other compares the entries one by one.
func (r *Reader) DomainID(name string) (uint32, bool) {
	if r.domainOrder == nil {
		for id, d := range r.domains {
			if d == name {
				return uint32(id), true
			}
		}
		return 0, false
	}
	order := r.domainOrder
	i := sort.Search(len(order), func(i int) bool { return r.domains[order[i]] >= name })
	if i < len(order) && r.domains[order[i]] == name {
		return order[i], true
	}
	return 0, false
}

// indexDomains sorts the domain ids by name for DomainID.
func (r *Reader) indexDomains() {
	order := make([]uint32, len(r.domains))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(r.domains[a], r.domains[b]) })
	r.domainOrder = order
}
