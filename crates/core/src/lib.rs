//! Domain types and rules, no I/O: GB/T 28181 IDs, grids, key sites, cameras, targets, status intervals and the compliance figures.
