//! The few parallel operations the reader and writer need: on the rayon
//! pool with the `parallel` feature, on the calling thread without it (a
//! smaller build for users who do not want rayon's dependencies).

/// How many threads share the work: rayon's pool size, or 1.
pub(crate) fn threads() -> usize {
    #[cfg(feature = "parallel")]
    return rayon::current_num_threads().max(1);
    #[cfg(not(feature = "parallel"))]
    return 1;
}

/// Runs `job` on the pool, or at once on this thread.
pub(crate) fn spawn(job: impl FnOnce() + Send + 'static) {
    #[cfg(feature = "parallel")]
    rayon::spawn(job);
    #[cfg(not(feature = "parallel"))]
    job();
}

/// What waiting for a pool job should do meanwhile.
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
pub(crate) enum Wait {
    /// This thread ran another pool job: look again.
    Ran,
    /// The pool had nothing to run: sleep a little, then look again.
    Idle,
    /// Not on a pool thread: block.
    Block,
}

/// Lets a pool thread that waits for a job run other jobs, so a pool whose
/// every thread waits cannot deadlock.
pub(crate) fn yield_now() -> Wait {
    #[cfg(feature = "parallel")]
    return match rayon::yield_now() {
        None => Wait::Block,
        Some(rayon::Yield::Executed) => Wait::Ran,
        Some(rayon::Yield::Idle) => Wait::Idle,
    };
    #[cfg(not(feature = "parallel"))]
    return Wait::Block;
}

/// Calls `f(stage, index, item)` for every item, on all cores, stopping at
/// the first error. `stage` is a scratch buffer kept per job; `min_len` is
/// the fewest items one job takes.
pub(crate) fn try_each_mut<T, E, F>(items: &mut [T], min_len: usize, f: F) -> Result<(), E>
where
    T: Send,
    E: Send,
    F: Fn(&mut Vec<u8>, usize, &mut T) -> Result<(), E> + Sync + Send,
{
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        items
            .par_iter_mut()
            .with_min_len(min_len.max(1))
            .enumerate()
            .try_for_each_init(Vec::new, |stage, (i, item)| f(stage, i, item))
    }
    #[cfg(not(feature = "parallel"))]
    {
        let _ = min_len;
        let mut stage = Vec::new();
        items
            .iter_mut()
            .enumerate()
            .try_for_each(|(i, item)| f(&mut stage, i, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_visited_once_with_its_index() {
        let mut items = vec![0usize; 1000];
        try_each_mut(&mut items, 7, |_, i, x| {
            *x += i + 1;
            Ok::<(), ()>(())
        })
        .unwrap();
        assert!(items.iter().enumerate().all(|(i, x)| *x == i + 1));
    }

    #[test]
    fn an_error_stops_the_walk() {
        let mut items = vec![0u8; 100];
        let r = try_each_mut(
            &mut items,
            1,
            |_, i, _| if i == 50 { Err(i) } else { Ok(()) },
        );
        assert_eq!(r, Err(50));
    }
}
