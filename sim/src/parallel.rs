//! Work spread over threads with results in input order, so what is printed or hashed never
//! depends on how many threads ran or which finished first.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` of every item, on up to `jobs` threads (at least one), in the items' order.
pub fn map_ordered<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    let r = f(item);
                    done.lock().expect("results lock")[i] = Some(r);
                }
            });
        }
    });
    // Every index below the length was taken by exactly one thread, and scope joined them all.
    done.into_inner().expect("results lock").into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_input_order_whatever_the_threads() {
        let items: Vec<u64> = (0..100).collect();
        // Later items finish first.
        let slow_first = |&i: &u64| {
            std::thread::sleep(std::time::Duration::from_micros(100 - i));
            i * 2
        };
        let expected: Vec<u64> = items.iter().map(|i| i * 2).collect();
        for jobs in [0, 1, 3, 200] {
            assert_eq!(map_ordered(&items, jobs, slow_first), expected, "{jobs} jobs");
        }
        assert!(map_ordered(&[] as &[u64], 4, |i| *i).is_empty());
    }
}
