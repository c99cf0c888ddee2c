//! The metadata index: cameras, grids, sites, targets and status history on sled 0.34 behind our own boundary.
