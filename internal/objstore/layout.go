package objstore

// The bucket layout (docs/scale-out.md shows it whole):
//
//	<prefix>days/<YYYY-MM-DD>/<node>/<segment file name>   one closed day of one node
//	<prefix>leases/purge                                   the purge lease (If-None-Match: *)
//	<prefix>purges/<YYYY-MM-DD>                            a purge run's record, by its cutoff day
//
// A day is one prefix, so that the purge destroys it with one DeleteAll and
// proves it gone with one listing. The node is a path element of its own so
// that a node name can never be the prefix of another's objects.
// The functions that build and parse these keys are the only place the
// layout is written (store, search and purge call them).
