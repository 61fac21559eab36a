//! A deterministic parallel map for emitting independent files.
//!
//! Each item is processed entirely on one thread and the results come back in item order,
//! so the output does not depend on the number of threads or on scheduling. `proc_macro2`
//! tokens are not `Send`: the closure must build and consume its tokens itself and return
//! only plain data (strings).
//!
//! Inside a procedural macro everything runs on the calling thread: there `proc_macro2`
//! makes compiler tokens, which exist only on the thread the compiler called the macro on.

// Only for `proc_macro::is_available` (a plain library may link the compiler's crate, as
// `proc_macro2` itself does).
extern crate proc_macro;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// At most this many threads (the work is a few milliseconds per file).
const MAX_THREADS: usize = 8;

/// How many threads [`map_ordered`] uses for `items` items: the available parallelism (at
/// most [`MAX_THREADS`], at most one per item), or 1 inside a procedural macro.
pub(crate) fn default_threads(items: usize) -> usize {
    if proc_macro::is_available() {
        return 1;
    }
    thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS)
        .min(items)
}

/// `items.iter().map(f).collect()`, computed on up to `threads` threads (the calling thread
/// included; 0 counts as 1). Threads take the next unprocessed item until none is left.
/// When no thread can be spawned the calling thread does all the work. A panic in `f` is
/// propagated to the caller.
pub(crate) fn map_ordered<T, R, F>(threads: usize, items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else {
                return done;
            };
            done.push((index, f(item)));
        }
    };
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        let mut finished = vec![work()];
        for helper in helpers {
            match helper.join() {
                Ok(done) => finished.push(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        for (index, result) in finished.into_iter().flatten() {
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        }
    });
    // Every index below `items.len()` was taken by exactly one thread.
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::map_ordered;

    #[test]
    fn results_are_in_item_order_on_any_number_of_threads() {
        let items: Vec<u64> = (0..1000).collect();
        let expected: Vec<u64> = items.iter().map(|n| n * n).collect();
        for threads in [0, 1, 2, 3, 8, 2000] {
            assert_eq!(
                map_ordered(threads, &items, |n| n * n),
                expected,
                "{threads}"
            );
        }
    }

    #[test]
    fn every_item_is_processed_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = AtomicUsize::new(0);
        let items: Vec<usize> = (0..257).collect();
        let out = map_ordered(4, &items, |n| {
            calls.fetch_add(1, Ordering::Relaxed);
            *n
        });
        assert_eq!(out, items);
        assert_eq!(calls.load(Ordering::Relaxed), items.len());
    }

    #[test]
    fn empty_and_single_inputs() {
        assert!(map_ordered(4, &[] as &[u8], |n| *n).is_empty());
        assert_eq!(map_ordered(4, &["a"], |s| s.len()), vec![1]);
    }

    #[test]
    fn a_panic_reaches_the_caller() {
        let items: Vec<usize> = (0..64).collect();
        let result = std::panic::catch_unwind(|| {
            map_ordered(4, &items, |n| {
                assert_ne!(*n, 40, "boom");
                *n
            })
        });
        assert!(result.is_err());
    }
}
