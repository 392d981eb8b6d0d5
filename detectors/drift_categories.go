package detectors

import "fmt"

// DefaultMaxCategories is the default capacity of a Categories dictionary.
const DefaultMaxCategories = 32

// OtherCategory is the index of the "other" bucket: categories seen once the dictionary is
// full.
const OtherCategory = 0

// Categories maps the values of one categorical feature to histogram indices, bounded: index 0
// is the "other" bucket, indices 1…max are given to the first max distinct values seen, in
// order; a later new value goes to "other" and is counted in Overflow. Reference and window
// histograms of a feature share one Categories, so their count slices (length Cap) line up; a
// category that appears only in the window gets its own index (while there is room) with a
// reference count of 0, which PSI and JS see as drift.
//
// Index is one map lookup, allocation-free for a known value; a new value allocates once (its
// map entry). Memory: about 50 bytes plus the name per category, at most max categories. Not
// safe for concurrent use.
type Categories struct {
	max      int
	index    map[string]int
	names    []string // names[i-1] is category i
	Overflow uint64   // Index calls that fell into "other" because the dictionary was full
}

// NewCategories returns an empty dictionary for at most max categories besides "other"
// (1 ≤ max ≤ 65536; 0 means DefaultMaxCategories).
func NewCategories(max int) (*Categories, error) {
	if max == 0 {
		max = DefaultMaxCategories
	}
	if max < 1 || max > 1<<16 {
		return nil, fmt.Errorf("detectors: max categories %d: want 1 to 65536", max)
	}
	return &Categories{max: max, index: make(map[string]int, min(max, 64))}, nil
}

// Index returns the index of value, adding it when there is room, else OtherCategory.
func (c *Categories) Index(value string) int {
	if i, ok := c.index[value]; ok {
		return i
	}
	if len(c.names) >= c.max {
		c.Overflow++
		return OtherCategory
	}
	c.names = append(c.names, value)
	i := len(c.names)
	c.index[value] = i
	return i
}

// Lookup returns the index of a known value without adding it.
func (c *Categories) Lookup(value string) (int, bool) {
	i, ok := c.index[value]
	return i, ok
}

// Len is the number of indices in use (1 + known categories).
func (c *Categories) Len() int { return 1 + len(c.names) }

// Cap is the length a count slice needs: 1 + max.
func (c *Categories) Cap() int { return 1 + c.max }

// Name returns the category of index i ("" for OtherCategory or an unused index).
func (c *Categories) Name(i int) string {
	if i < 1 || i > len(c.names) {
		return ""
	}
	return c.names[i-1]
}
