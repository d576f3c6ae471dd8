//! Fixed work split over a variable number of threads.
//!
//! Work is cut into pieces whose shapes never depend on the thread count;
//! threads only decide who computes which piece. Combined with reductions
//! in a fixed order, results are bit-identical for any thread count.

/// Calls `f(index, item)` for every item, spreading contiguous groups of
/// items over up to `threads` scoped threads (the caller's thread takes the
/// first group).
pub fn for_each_split<T: Send>(items: &mut [T], threads: usize, f: impl Fn(usize, &mut T) + Sync) {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        items.iter_mut().enumerate().for_each(|(i, item)| f(i, item));
        return;
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut groups = items.chunks_mut(per).enumerate();
        let (_, first) = groups.next().expect("at least one group");
        for (g, group) in groups {
            let f = &f;
            scope.spawn(move || group.iter_mut().enumerate().for_each(|(i, item)| f(g * per + i, item)));
        }
        first.iter_mut().enumerate().for_each(|(i, item)| f(i, item));
    });
}

/// The `index`-th of `parts` contiguous, nearly equal ranges of `0..len`.
pub fn part(len: usize, parts: usize, index: usize) -> std::ops::Range<usize> {
    (index * len / parts)..((index + 1) * len / parts)
}

/// What a lane does after one item of [`on_lanes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneFlow {
    /// Take the next item.
    Next,
    /// Take no more (the item stopped on request, with a checkpoint).
    Stop,
}

/// Runs `work` on the items of `items` on `lanes` threads (the caller's
/// own when there is one lane), each lane taking the next item nobody has
/// taken, until none is left, `stop()` says so before an item, the lane's
/// work says [`LaneFlow::Stop`], or some lane's work failed (then no lane
/// takes another item). Returns the first error in lane order, else
/// whether some lane stopped. The pool of a run's variants and of a
/// sweep's points.
pub fn on_lanes<T: Sync>(
    items: &[T],
    lanes: usize,
    stop: &(dyn Fn() -> bool + Sync),
    work: impl Fn(&T) -> anyhow::Result<LaneFlow> + Sync,
) -> anyhow::Result<bool> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let lane = || -> anyhow::Result<bool> {
        loop {
            if stop() || failed.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst)) else { return Ok(false) };
            match work(item) {
                Ok(LaneFlow::Next) => {}
                Ok(LaneFlow::Stop) => return Ok(true),
                Err(e) => {
                    failed.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
    };
    let lanes = lanes.clamp(1, items.len().max(1));
    let outcomes: Vec<anyhow::Result<bool>> = if lanes == 1 {
        vec![lane()]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..lanes).map(|_| scope.spawn(lane)).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        })
    };
    let mut stopped = false;
    for outcome in outcomes {
        stopped |= outcome?;
    }
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_visited_once_with_its_index() {
        for threads in 1..5 {
            let mut items = vec![0usize; 7];
            for_each_split(&mut items, threads, |i, x| *x += i + 1);
            assert_eq!(items, (1..=7).collect::<Vec<_>>());
        }
    }

    #[test]
    fn lanes_take_every_item_once_and_stop_on_a_failure_or_a_stop() {
        use std::sync::Mutex;
        for lanes in 1..4 {
            let seen = Mutex::new(Vec::new());
            let stopped = on_lanes(&[1, 2, 3, 4, 5], lanes, &|| false, |&i| {
                seen.lock().unwrap().push(i);
                Ok(LaneFlow::Next)
            });
            assert!(!stopped.unwrap());
            let mut seen = seen.into_inner().unwrap();
            seen.sort();
            assert_eq!(seen, [1, 2, 3, 4, 5]);
        }
        let failed =
            on_lanes(
                &[1, 2, 3],
                1,
                &|| false,
                |&i| if i == 2 { anyhow::bail!("item {i}") } else { Ok(LaneFlow::Next) },
            );
        assert_eq!(failed.unwrap_err().to_string(), "item 2");
        let taken = std::sync::atomic::AtomicUsize::new(0);
        let stopped = on_lanes(&[1, 2, 3], 1, &|| false, |_| {
            taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(LaneFlow::Stop)
        });
        assert!(stopped.unwrap());
        assert_eq!(taken.into_inner(), 1, "a lane that stops takes no more");
        assert!(!on_lanes(&[1, 2], 2, &|| true, |_| -> anyhow::Result<LaneFlow> { panic!("stopped before") }).unwrap());
    }

    #[test]
    fn parts_cover_the_range() {
        let ranges: Vec<_> = (0..3).map(|i| part(128, 3, i)).collect();
        assert_eq!(ranges, vec![0..42, 42..85, 85..128]);
    }
}
