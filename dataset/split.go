package dataset

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"math"
	"path/filepath"
	"slices"
)

// Split divides episode paths into training and validation sets by episode (never by sample, so
// no episode leaks into both). Each path is ranked by a seeded FNV-1a hash of its base name and
// the first round(valFraction n) in that ranking are validation (at least one, when valFraction
// > 0 and there are two or more paths). The result depends only on the seed and the set of base
// names, not on their order or directory; both lists are returned sorted.
func Split(paths []string, valFraction float64, seed uint64) (train, val []string) {
	if math.IsNaN(valFraction) {
		valFraction = 0
	}
	valFraction = min(max(valFraction, 0), 1)
	type ranked struct {
		key  uint64
		path string
	}
	rs := make([]ranked, len(paths))
	var sb [8]byte
	binary.LittleEndian.PutUint64(sb[:], seed)
	for i, p := range paths {
		h := fnv.New64a()
		h.Write(sb[:])
		h.Write([]byte(filepath.Base(p)))
		rs[i] = ranked{h.Sum64(), p}
	}
	slices.SortFunc(rs, func(a, b ranked) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.path, b.path)) })
	nv := int(math.Round(valFraction * float64(len(paths))))
	if valFraction > 0 && nv == 0 && len(paths) >= 2 {
		nv = 1
	}
	for i, r := range rs {
		if i < nv {
			val = append(val, r.path)
		} else {
			train = append(train, r.path)
		}
	}
	slices.Sort(train)
	slices.Sort(val)
	return train, val
}
