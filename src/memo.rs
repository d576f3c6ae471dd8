//! Values computed once per key and kept: what every point of a sweep asks
//! for alike (the inputs' second moment, the critical weight variance) is
//! computed by the first to ask. The same key gives the same bits whether
//! the value was computed or kept, as the functions kept are pure.

use std::sync::Mutex;

/// Values by key, in the order they were first computed. A lookup is a
/// scan: the few keys a process meets (one per data set and count, one per
/// activation and bias variance) do not need a hash.
#[derive(Debug, Default)]
pub struct Memo<K, V>(Mutex<Vec<(K, V)>>);

impl<K: PartialEq, V: Clone> Memo<K, V> {
    /// An empty memo (`const`, so that it can be a `static`).
    pub const fn new() -> Self {
        Memo(Mutex::new(Vec::new()))
    }

    /// The value kept for `key`, else `compute()`, kept. The lock is not
    /// held while computing: two threads asking at once may both compute,
    /// and get the same value.
    pub fn get_or_insert_with(&self, key: K, compute: impl FnOnce() -> V) -> V {
        let lock = || self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, value)) = lock().iter().find(|(k, _)| *k == key) {
            return value.clone();
        }
        let value = compute();
        lock().push((key, value.clone()));
        value
    }
}

impl<K: Clone, V: Clone> Clone for Memo<K, V> {
    fn clone(&self) -> Self {
        Memo(Mutex::new(self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_computed_once_and_its_value_kept_through_a_clone() {
        let memo = Memo::new();
        let calls = std::cell::Cell::new(0);
        let square = |x: u32| {
            calls.set(calls.get() + 1);
            x * x
        };
        assert_eq!(memo.get_or_insert_with(3, || square(3)), 9);
        assert_eq!(memo.get_or_insert_with(4, || square(4)), 16);
        assert_eq!(memo.get_or_insert_with(3, || square(3)), 9);
        assert_eq!(calls.get(), 2);
        assert_eq!(memo.clone().get_or_insert_with(4, || square(4)), 16);
        assert_eq!(calls.get(), 2, "a clone keeps what was computed");
    }
}
