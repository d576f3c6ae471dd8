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
    fn parts_cover_the_range() {
        let ranges: Vec<_> = (0..3).map(|i| part(128, 3, i)).collect();
        assert_eq!(ranges, vec![0..42, 42..85, 85..128]);
    }
}
