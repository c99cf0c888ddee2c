//! Copy-on-write slot storage with O(slots / 1024) snapshots.
//!
//! Slots are grouped in chunks of [`CHUNK`] behind an `Arc`, and each occupied slot holds its own
//! `Arc`. Cloning the storage (a report snapshot) copies one pointer per chunk — about 200 for a
//! 200 000-camera city — instead of touching every entry, and dropping a snapshot is as cheap.
//! A writer that changes a slot while a snapshot shares its chunk copies that chunk (1 024
//! pointer copies) once, then the entry itself only if the snapshot still shares it.

use std::sync::Arc;

/// Slots per chunk.
pub(crate) const CHUNK: usize = 1024;

#[derive(Debug)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Arc<Vec<Option<Arc<T>>>>>,
    len: usize,
}

impl<T> Clone for Chunked<T> {
    fn clone(&self) -> Self {
        Chunked {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Chunked<T> {
    /// Number of slots (occupied or not).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)?.as_deref()
    }

    /// Mutable access, copying the chunk and the entry if a snapshot shares them.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let chunk = Arc::make_mut(self.chunks.get_mut(i / CHUNK)?);
        chunk.get_mut(i % CHUNK)?.as_mut().map(Arc::make_mut)
    }

    /// Appends a slot; returns its index.
    pub(crate) fn push(&mut self, v: T) -> usize {
        let i = self.len;
        if i % CHUNK == 0 {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        if let Some(last) = self.chunks.last_mut() {
            Arc::make_mut(last).push(Some(Arc::new(v)));
        }
        self.len += 1;
        i
    }

    /// Replaces (or with `None` empties) an existing slot; returns the previous value.
    pub(crate) fn set(&mut self, i: usize, v: Option<T>) -> Option<Arc<T>> {
        let chunk = Arc::make_mut(self.chunks.get_mut(i / CHUNK)?);
        let slot = chunk.get_mut(i % CHUNK)?;
        std::mem::replace(slot, v.map(Arc::new))
    }

    /// Occupied slots in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(j, e)| e.as_deref().map(|e| (c * CHUNK + j, e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_isolated_from_later_writes() {
        let mut a: Chunked<Vec<u32>> = Chunked::default();
        for i in 0..(CHUNK as u32 * 2 + 5) {
            a.push(vec![i]);
        }
        let snap = a.clone();
        a.get_mut(3).unwrap().push(99);
        a.set(CHUNK + 1, None);
        let i = a.push(vec![7]);
        assert_eq!(i, CHUNK * 2 + 5);
        assert_eq!(snap.get(3).unwrap(), &vec![3]);
        assert_eq!(a.get(3).unwrap(), &vec![3, 99]);
        assert!(snap.get(CHUNK + 1).is_some());
        assert!(a.get(CHUNK + 1).is_none());
        assert_eq!(snap.len(), CHUNK * 2 + 5);
        assert_eq!(a.iter().count(), CHUNK * 2 + 5);
        assert!(a.get(10_000).is_none());
        assert!(a.set(10_000, None).is_none());
    }
}
