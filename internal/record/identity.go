package record

import "unsafe"

// StringAddr returns where s's bytes lie, as a number. The ingest's parser
// hands over one string per distinct domain and user agent of a request,
// so the WAL's batch encoder (AppendSharedBatch) and the store's heads
// find a request's repeated values by address instead of hashing their
// bytes. Two strings alive at the same time with the same address and
// length hold the same bytes, since strings do not change; a caller that
// compares an address with one it remembered must keep that string alive
// meanwhile, or the address may be reused. The number is only compared,
// never turned back into a pointer.
func StringAddr(s string) uintptr {
	return uintptr(unsafe.Pointer(unsafe.StringData(s))) //nolint:gosec // G103: only the address is read, as a number; no memory is reached through it
}

// AddrSlot returns a slot for addr among n, a power of two: its bits above
// the allocator's 8-byte alignment, folded.
func AddrSlot(addr uintptr, n int) int {
	return int((addr>>3 ^ addr>>15) & uintptr(n-1))
}
