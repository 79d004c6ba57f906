//! An in-memory state backend that counts database reads and writes the way a benchmarking node
//! does.
//!
//! frame-benchmarking's runtime side asks the host to commit the benchmark's setup to the
//! database, to reset and read the per-key read/write counters around the benchmarked call, and
//! to wipe the database back to genesis afterwards. Nodes answer with `sc-client-db`'s
//! `BenchmarkingState`, whose crate pulls in the whole client (and its WASM executor); this
//! backend implements the same host contract over the in-memory trie backend, with the same
//! counting rules: a key's first read (or write) in a call counts, later ones are repeats;
//! whitelisted keys count for nothing; a write also marks the key as read.

use polkadot_sdk::{
    sp_core::{Hasher, storage::ChildInfo},
    sp_runtime::{StateVersion, traits::BlakeTwo256},
    sp_state_machine::{
        Backend, BackendTransaction, ChildStorageCollection, InMemoryBackend, IterArgs,
        StateMachineStats, StorageCollection, StorageIterator, StorageKey, StorageValue, UsageInfo,
    },
    sp_storage::{Storage, TrackedStorageKey},
    sp_trie::MerkleValue,
};
use std::cell::RefCell;
use std::collections::BTreeMap;

type H = BlakeTwo256;
type Inner = InMemoryBackend<H>;
type HashOut = <H as Hasher>::Out;

/// Per-key counters of one benchmarked call (the main trie and each child trie by its key).
#[derive(Default, Debug)]
struct Tracker {
    keys: BTreeMap<(Option<Vec<u8>>, Vec<u8>), TrackedStorageKey>,
}

/// The in-memory genesis state with benchmark tracking.
#[derive(Debug)]
pub(crate) struct CountingBackend {
    genesis: Inner,
    inner: RefCell<Inner>,
    tracking: bool,
    tracker: RefCell<Tracker>,
    whitelist: RefCell<Vec<TrackedStorageKey>>,
}

impl CountingBackend {
    /// A backend over `genesis`; `tracking` switches the read/write counters on (timing runs
    /// leave them off, as nodes do).
    pub(crate) fn new(genesis: Storage, tracking: bool) -> Self {
        let state: Inner = (genesis, StateVersion::V1).into();
        Self {
            genesis: state.clone(),
            inner: RefCell::new(state),
            tracking,
            tracker: RefCell::new(Tracker::default()),
            whitelist: RefCell::new(Vec::new()),
        }
    }

    fn track(&self, child: Option<&[u8]>, key: &[u8], write: bool) {
        if !self.tracking {
            return;
        }
        let mut t = self.tracker.borrow_mut();
        let entry = t
            .keys
            .entry((child.map(<[u8]>::to_vec), key.to_vec()))
            .or_insert_with(|| TrackedStorageKey::new(key.to_vec()));
        if write {
            entry.add_write();
        } else {
            entry.add_read();
        }
    }

    fn reset_tracker(&self) {
        let mut t = self.tracker.borrow_mut();
        t.keys.clear();
        for w in self.whitelist.borrow().iter() {
            let mut k = TrackedStorageKey::new(w.key.clone());
            k.whitelist();
            t.keys.insert((None, w.key.clone()), k);
        }
    }
}

/// Iterates the inner backend, counting every key it yields as read.
pub(crate) struct RawIter {
    inner: <Inner as Backend<H>>::RawIter,
    child: Option<Vec<u8>>,
}

impl StorageIterator<H> for RawIter {
    type Backend = CountingBackend;
    type Error = <Inner as Backend<H>>::Error;

    fn next_key(&mut self, backend: &CountingBackend) -> Option<Result<StorageKey, Self::Error>> {
        let inner = backend.inner.borrow();
        let next = self.inner.next_key(&inner);
        if let Some(Ok(key)) = &next {
            backend.track(self.child.as_deref(), key, false);
        }
        next
    }

    fn next_pair(
        &mut self,
        backend: &CountingBackend,
    ) -> Option<Result<(StorageKey, StorageValue), Self::Error>> {
        let inner = backend.inner.borrow();
        let next = self.inner.next_pair(&inner);
        if let Some(Ok((key, _))) = &next {
            backend.track(self.child.as_deref(), key, false);
        }
        next
    }

    fn was_complete(&self) -> bool {
        self.inner.was_complete()
    }
}

impl Backend<H> for CountingBackend {
    type Error = <Inner as Backend<H>>::Error;
    type TrieBackendStorage = <Inner as Backend<H>>::TrieBackendStorage;
    type RawIter = RawIter;

    fn storage(&self, key: &[u8]) -> Result<Option<StorageValue>, Self::Error> {
        self.track(None, key, false);
        self.inner.borrow().storage(key)
    }

    fn storage_hash(&self, key: &[u8]) -> Result<Option<HashOut>, Self::Error> {
        self.track(None, key, false);
        self.inner.borrow().storage_hash(key)
    }

    fn closest_merkle_value(
        &self,
        key: &[u8],
    ) -> Result<Option<MerkleValue<HashOut>>, Self::Error> {
        self.track(None, key, false);
        self.inner.borrow().closest_merkle_value(key)
    }

    fn child_closest_merkle_value(
        &self,
        child_info: &ChildInfo,
        key: &[u8],
    ) -> Result<Option<MerkleValue<HashOut>>, Self::Error> {
        self.track(Some(child_info.storage_key()), key, false);
        self.inner
            .borrow()
            .child_closest_merkle_value(child_info, key)
    }

    fn child_storage(
        &self,
        child_info: &ChildInfo,
        key: &[u8],
    ) -> Result<Option<StorageValue>, Self::Error> {
        self.track(Some(child_info.storage_key()), key, false);
        self.inner.borrow().child_storage(child_info, key)
    }

    fn child_storage_hash(
        &self,
        child_info: &ChildInfo,
        key: &[u8],
    ) -> Result<Option<HashOut>, Self::Error> {
        self.track(Some(child_info.storage_key()), key, false);
        self.inner.borrow().child_storage_hash(child_info, key)
    }

    fn next_storage_key(&self, key: &[u8]) -> Result<Option<StorageKey>, Self::Error> {
        self.track(None, key, false);
        self.inner.borrow().next_storage_key(key)
    }

    fn next_child_storage_key(
        &self,
        child_info: &ChildInfo,
        key: &[u8],
    ) -> Result<Option<StorageKey>, Self::Error> {
        self.track(Some(child_info.storage_key()), key, false);
        self.inner.borrow().next_child_storage_key(child_info, key)
    }

    fn storage_root<'a>(
        &self,
        delta: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        state_version: StateVersion,
    ) -> (HashOut, BackendTransaction<H>) {
        self.inner.borrow().storage_root(delta, state_version)
    }

    fn child_storage_root<'a>(
        &self,
        child_info: &ChildInfo,
        delta: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        state_version: StateVersion,
    ) -> (HashOut, bool, BackendTransaction<H>) {
        self.inner
            .borrow()
            .child_storage_root(child_info, delta, state_version)
    }

    fn raw_iter(&self, args: IterArgs) -> Result<RawIter, Self::Error> {
        let child = args.child_info.as_ref().map(|c| c.storage_key().to_vec());
        Ok(RawIter {
            inner: self.inner.borrow().raw_iter(args)?,
            child,
        })
    }

    fn register_overlay_stats(&self, stats: &StateMachineStats) {
        self.inner.borrow().register_overlay_stats(stats);
    }

    fn usage_info(&self) -> UsageInfo {
        self.inner.borrow().usage_info()
    }

    fn wipe(&self) -> Result<(), Self::Error> {
        *self.inner.borrow_mut() = self.genesis.clone();
        self.reset_tracker();
        Ok(())
    }

    fn commit(
        &self,
        root: HashOut,
        transaction: BackendTransaction<H>,
        main: StorageCollection,
        children: ChildStorageCollection,
    ) -> Result<(), Self::Error> {
        self.inner.borrow_mut().apply_transaction(root, transaction);
        for (key, _) in &main {
            self.track(None, key, true);
        }
        for (child, changes) in &children {
            for (key, _) in changes {
                self.track(Some(child), key, true);
            }
        }
        Ok(())
    }

    fn read_write_count(&self) -> (u32, u32, u32, u32) {
        let (mut reads, mut repeat_reads, mut writes, mut repeat_writes) = (0u32, 0u32, 0u32, 0u32);
        for k in self.tracker.borrow().keys.values() {
            if k.whitelisted {
                continue;
            }
            if k.reads > 0 {
                reads = reads.saturating_add(1);
                repeat_reads = repeat_reads.saturating_add(k.reads.saturating_sub(1));
            }
            if k.writes > 0 {
                writes = writes.saturating_add(1);
                repeat_writes = repeat_writes.saturating_add(k.writes.saturating_sub(1));
            }
        }
        (reads, repeat_reads, writes, repeat_writes)
    }

    fn reset_read_write_count(&self) {
        self.reset_tracker();
    }

    fn get_whitelist(&self) -> Vec<TrackedStorageKey> {
        self.whitelist.borrow().clone()
    }

    fn set_whitelist(&self, new: Vec<TrackedStorageKey>) {
        *self.whitelist.borrow_mut() = new;
    }

    fn proof_size(&self) -> Option<u32> {
        // No proof recorder: the weights' proof sizes are estimated from `MaxEncodedLen`.
        None
    }

    fn get_read_and_written_keys(&self) -> Vec<(Vec<u8>, u32, u32, bool)> {
        // Per key prefix (the first 32 bytes: pallet and item hashes), each key counted once.
        let mut by_prefix: BTreeMap<Vec<u8>, (u32, u32, bool)> = BTreeMap::new();
        for ((child, key), k) in &self.tracker.borrow().keys {
            if k.whitelisted || child.is_some() {
                continue;
            }
            let prefix = key.get(..key.len().min(32)).unwrap_or_default().to_vec();
            let e = by_prefix.entry(prefix).or_insert((0, 0, false));
            e.0 = e.0.saturating_add(k.reads.min(1));
            e.1 = e.1.saturating_add(k.writes.min(1));
        }
        by_prefix
            .into_iter()
            .map(|(p, (r, w, wl))| (p, r, w, wl))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    // Tests may panic on broken expectations.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use polkadot_sdk::sp_state_machine::{Ext, OverlayedChanges};
    use polkadot_sdk::sp_storage::{Storage, TrackedStorageKey};
    use std::collections::BTreeMap;

    fn backend() -> CountingBackend {
        let top: BTreeMap<Vec<u8>, Vec<u8>> = [
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
            (b"w".to_vec(), b"3".to_vec()),
        ]
        .into_iter()
        .collect();
        CountingBackend::new(
            Storage {
                top,
                children_default: Default::default(),
            },
            true,
        )
    }

    /// Runs `f` as the runtime would, over `b`.
    fn with_ext<R>(b: &CountingBackend, f: impl FnOnce() -> R) -> R {
        let mut overlay = OverlayedChanges::default();
        let mut ext = Ext::new(&mut overlay, b, None);
        polkadot_sdk::sp_externalities::set_and_run_with_externalities(&mut ext, f)
    }

    #[test]
    fn reads_and_writes_count_like_a_benchmarking_node_works() {
        use polkadot_sdk::{frame_benchmarking::benchmarking as host, sp_io::storage};
        let b = backend();
        b.set_whitelist(vec![TrackedStorageKey::new(b"w".to_vec())]);
        with_ext(&b, || {
            host::reset_read_write_count();
            assert_eq!(storage::get(b"a").as_deref(), Some(&b"1"[..]));
            // Read twice: once from the database, once from the overlay's cache.
            assert!(storage::get(b"b").is_some());
            assert!(storage::get(b"b").is_some());
            // Whitelisted keys count for nothing.
            assert!(storage::get(b"w").is_some());
            storage::set(b"c", b"4");
            host::commit_db();
            let (reads, _, writes, _) = host::read_write_count();
            assert_eq!((reads, writes), (2, 1));
        });
        // Committed state is visible; a wipe restores genesis.
        assert_eq!(b.storage(b"c").unwrap(), Some(b"4".to_vec()));
        b.wipe().unwrap();
        assert_eq!(b.read_write_count(), (0, 0, 0, 0));
        assert_eq!(b.storage(b"c").unwrap(), None);
        assert_eq!(b.read_write_count(), (1, 0, 0, 0));
    }

    #[test]
    fn tracking_off_counts_nothing_works() {
        let b = CountingBackend::new(Storage::default(), false);
        assert_eq!(b.storage(b"x").unwrap(), None);
        assert_eq!(b.read_write_count(), (0, 0, 0, 0));
    }
}
