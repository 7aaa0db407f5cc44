package segment

import (
	"math/bits"
	"net/netip"
)

// The address filter (format 2) is a Bloom filter over the IP index keys
// of a segment. An exact-address search over two years asks every day's
// segment for an address that most days never saw; without the filter each
// answer costs an index page (read, checked, decompressed, scanned), with
// it almost always a handful of bit tests on the mapped footer.
//
// bloomBitsPerKey = 10 and bloomHashes = 7 give about 1% false positives,
// which then cost the index page as before. The filter adds 1.25 bytes per
// distinct key (0.05 bytes per record on loggen data).
const (
	bloomBitsPerKey = 10
	bloomHashes     = 7
	// bloomMaxBytes bounds the filter the reader accepts.
	bloomMaxBytes = 64 << 20
)

// Besides every address, the filter holds every address's /24 (IPv4) or
// /48 (IPv6) network, so that a CIDR query at least that narrow can be
// ruled out too: a /24 key is the byte 0x84 and the network's first 3
// bytes, a /48 key 0x86 and its first 6 bytes (address keys start with 4
// or 6, so the two kinds never collide).
const (
	bloomNet4Bits = 24
	bloomNet6Bits = 48
)

// appendNetKey appends the filter key of a's /24 or /48 network.
func appendNetKey(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(b, 0x84, v[0], v[1], v[2])
	}
	v := a.As16()
	return append(append(b, 0x86), v[:6]...)
}

// bloomHash is 64-bit FNV-1a over an index key, then a final mix so that
// the two halves used for double hashing are independent enough. It must
// never change: it is part of the file format.
func bloomHash(key []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	// The finaliser of MurmurHash3 (fmix64).
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// bloomBytes returns the filter size for n keys: a multiple of 8 bytes,
// at least 8.
func bloomBytes(n int) int {
	return max(8, (n*bloomBitsPerKey+63)/64*8)
}

// bloomAdd sets key's bits in filter. mix is the keyed permutation of an
// encrypted segment's filter (nil for a plain one).
func bloomAdd(filter []byte, key []byte, mix func(uint64) uint64) { bloomProbe(filter, key, true, mix) }

// bloomMayContain reports whether key may be in filter; false is certain.
// An empty filter (format 1 has none) rules nothing out.
func bloomMayContain(filter []byte, key []byte, mix func(uint64) uint64) bool {
	return len(filter) == 0 || bloomProbe(filter, key, false, mix)
}

// bloomProbe visits key's bloomHashes probe bits (double hashing: probe i
// is h1 + i·h2 modulo the filter's bits), setting each when set is true,
// and reports whether all of them were set. In an encrypted segment the
// hash goes through mix, a permutation keyed by the day key
// (keys.FileCipher.Mix): without the key nobody can compute where an
// address's bits lie, so the filter in the clear says nothing about
// which addresses the file holds.
func bloomProbe(filter []byte, key []byte, set bool, mix func(uint64) uint64) bool {
	m := uint64(len(filter)) * 8
	h := bloomHash(key)
	if mix != nil {
		h = mix(h)
	}
	h1, h2 := h, bits.RotateLeft64(h, 32)|1
	all := true
	for i := uint64(0); i < bloomHashes; i++ {
		b := (h1 + i*h2) % m
		if set {
			filter[b/8] |= 1 << (b % 8)
		} else if filter[b/8]&(1<<(b%8)) == 0 {
			all = false
			break
		}
	}
	return all
}
