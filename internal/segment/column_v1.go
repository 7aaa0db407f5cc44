package segment

// Format version 1 stored the time column as uvarint deltas and the domain
// and user-agent id columns as uvarints. Version 2 replaced both with
// byte-transposed fixed-width numbers, which decode several times faster;
// these decoders remain so that version-1 files stay readable for as long
// as they may be within a retention period.

// decodeTimesV1 decodes a version-1 time column into dst.
func decodeTimesV1(dst []int64, raw []byte, rows int, minT, maxT int64) ([]int64, error) {
	out := grow(dst, rows)
	t, pos := minT, 0
	for i := range out {
		var delta uint64
		delta, pos = uvarintAt(raw, pos)
		if pos < 0 || delta > uint64(maxT-t) {
			return nil, malformed("time delta")
		}
		t += int64(delta)
		out[i] = t
	}
	switch {
	case t != maxT:
		return nil, malformed("block maximum time")
	case pos != len(raw):
		return nil, malformed("time column (trailing bytes)")
	}
	return out, nil
}

// decodeIDsV1 decodes a version-1 dictionary-id column into dst; every id
// must be below n.
func decodeIDsV1(dst []uint32, raw []byte, rows int, n int, what string) ([]uint32, error) {
	out := grow(dst, rows)
	pos := 0
	for i := range out {
		var id uint64
		id, pos = uvarintAt(raw, pos)
		if pos < 0 || id >= uint64(n) {
			return nil, malformed(what + " id")
		}
		out[i] = uint32(id)
	}
	if pos != len(raw) {
		return nil, malformed(what + " column (trailing bytes)")
	}
	return out, nil
}
