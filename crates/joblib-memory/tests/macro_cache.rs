//! The `#[cache]` attribute, used for real.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use joblib_memory::{Memory, cache};
use ndarray::Array1;

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
static MEMORY: LazyLock<Memory> = LazyLock::new(|| Memory::new(DIR.path()));

static SQUARE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Doc comments are kept on the function.
#[cache(MEMORY)]
fn square(x: u64) -> u64 {
    SQUARE_CALLS.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[test]
fn a_cached_fn_keeps_its_signature_and_hits() {
    let f: fn(u64) -> u64 = square;
    assert_eq!(f(7), 49);
    assert_eq!(square(7), 49);
    assert_eq!(SQUARE_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(square(8), 64);
    assert_eq!(SQUARE_CALLS.load(Ordering::SeqCst), 2);
    // Stored under the module path and name.
    let fdir = DIR.path().join("macro_cache").join("square");
    assert!(fdir.join("func.json").is_file());
    let func: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fdir.join("func.json")).unwrap()).unwrap();
    assert_eq!(func["function"], "macro_cache::square");
    assert_eq!(
        func["fingerprint"],
        format!("{:032x}", __joblib_fingerprint_square())
    );
}

static NORM_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(MEMORY, ignore(verbose, threads))]
fn norm(v: &Array1<f64>, verbose: bool, threads: usize) -> f64 {
    NORM_CALLS.fetch_add(1, Ordering::SeqCst);
    if verbose {
        eprintln!("norm on {threads} threads");
    }
    v.dot(v).sqrt()
}

#[test]
fn ignored_arguments_are_not_part_of_the_key() {
    let v = Array1::from(vec![3.0, 4.0]);
    assert_eq!(norm(&v, false, 1), 5.0);
    assert_eq!(norm(&v, true, 8), 5.0);
    assert_eq!(NORM_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(norm(&Array1::from(vec![6.0, 8.0]), false, 1), 10.0);
    assert_eq!(NORM_CALLS.load(Ordering::SeqCst), 2);
}

static PATTERN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(MEMORY)]
fn patterns((a, b): (u32, u32), mut acc: Vec<u32>) -> Vec<u32> {
    PATTERN_CALLS.fetch_add(1, Ordering::SeqCst);
    acc.push(a + b);
    acc
}

#[test]
fn pattern_and_mut_parameters_work() {
    assert_eq!(patterns((1, 2), vec![0]), [0, 3]);
    assert_eq!(patterns((1, 2), vec![0]), [0, 3]);
    assert_eq!(PATTERN_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(patterns((2, 1), vec![0]), [0, 3]);
    assert_eq!(PATTERN_CALLS.load(Ordering::SeqCst), 2);
}

static GENERIC_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(MEMORY)]
fn total<T>(xs: &[T]) -> f64
where
    T: serde::Serialize + Copy + Into<f64>,
{
    GENERIC_CALLS.fetch_add(1, Ordering::SeqCst);
    xs.iter().map(|&x| x.into()).sum()
}

#[test]
fn generic_functions_key_on_their_type_parameters() {
    assert_eq!(total(&[1.0f64, 2.0]), 3.0);
    assert_eq!(total(&[1.0f64, 2.0]), 3.0);
    assert_eq!(GENERIC_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(total(&[1.0f32, 2.0]), 3.0);
    assert_eq!(total(&[1u8, 2]), 3.0);
    assert_eq!(GENERIC_CALLS.load(Ordering::SeqCst), 3);
}

// Two versions of the same code, as two builds of a program would have.
// The callers' tokens are identical; only the helper differs.
mod build1 {
    use super::*;

    #[cache(MEMORY)]
    pub(crate) fn helper(x: u32) -> u32 {
        x + 1
    }

    #[cache(MEMORY, depends_on(helper))]
    pub(crate) fn caller(x: u32) -> u32 {
        helper(x) * 2
    }

    #[cache(MEMORY)]
    pub(crate) fn independent(x: u32) -> u32 {
        helper(x) * 2
    }

    #[cache(MEMORY)]
    pub(crate) fn body(x: u32) -> u32 {
        x + 1
    }

    #[cache(MEMORY)]
    pub(crate) fn spaced(x: u32) -> u32 {
        x + 1
    }
}

mod build2 {
    use super::*;

    #[cache(MEMORY)]
    pub(crate) fn helper(x: u32) -> u32 {
        x + 2
    }

    #[cache(MEMORY, depends_on(helper))]
    pub(crate) fn caller(x: u32) -> u32 {
        helper(x) * 2
    }

    #[cache(MEMORY)]
    pub(crate) fn independent(x: u32) -> u32 {
        helper(x) * 2
    }

    #[cache(MEMORY)]
    pub(crate) fn body(x: u32) -> u32 {
        x + 2
    }

    /// Whitespace, comments and doc comments are not code.
    #[cache(MEMORY)]
    pub(crate) fn spaced(x: u32) -> u32 {
        // A comment.
        x + /* inline */ 1
    }
}

// One function, three times, with its helper named by different paths.
mod across1 {
    use super::*;

    #[cache(MEMORY, depends_on(super::build1::helper))]
    pub(crate) fn across(x: u32) -> u32 {
        x
    }
}

mod across2 {
    use super::*;

    #[cache(MEMORY, depends_on(crate::build2::helper))]
    pub(crate) fn across(x: u32) -> u32 {
        x
    }
}

mod across3 {
    use super::*;

    #[cache(MEMORY, depends_on(crate::build1::helper))]
    pub(crate) fn across(x: u32) -> u32 {
        x
    }
}

#[test]
fn depends_on_takes_paths() {
    assert_ne!(
        across1::__joblib_fingerprint_across(),
        across2::__joblib_fingerprint_across()
    );
    assert_eq!(
        across1::__joblib_fingerprint_across(),
        across3::__joblib_fingerprint_across()
    );
    assert_eq!(across1::across(3), 3);
    assert_eq!(across2::across(3), 3);
}

#[test]
fn fingerprints_follow_the_code_and_its_dependencies() {
    use build1 as a;
    use build2 as b;
    assert_ne!(
        a::__joblib_fingerprint_body(),
        b::__joblib_fingerprint_body()
    );
    assert_eq!(
        a::__joblib_fingerprint_spaced(),
        b::__joblib_fingerprint_spaced()
    );
    assert_eq!(
        a::__joblib_fingerprint_independent(),
        b::__joblib_fingerprint_independent(),
        "without depends_on, a helper's change is not seen"
    );
    assert_ne!(
        a::__joblib_fingerprint_caller(),
        b::__joblib_fingerprint_caller(),
        "depends_on folds the helper's fingerprint in"
    );
    assert_eq!(a::caller(1), 4);
    assert_eq!(b::caller(1), 6);
    assert_eq!(a::caller(1), 4);
}

#[test]
fn a_changed_fingerprint_clears_the_functions_entries() {
    use joblib_memory::__private::{CachedFn, Lookup};
    // What two builds of `tests::changed` expand to, with the fingerprints
    // of two versions of its body.
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let run = |fp: u128, x: u32, value: u32| -> (u32, bool) {
        let f = CachedFn::new(&memory, "tests::changed", fp);
        match f.lookup::<_, u32>(&(x,)) {
            Lookup::Hit(v) => (v, true),
            Lookup::Miss(p) => (p.run(|| value), false),
        }
    };
    assert_eq!(run(1, 5, 50), (50, false));
    assert_eq!(run(1, 5, 0), (50, true));
    assert_eq!(run(1, 6, 60), (60, false));
    let fdir = dir.path().join("tests").join("changed");
    let entries = || {
        std::fs::read_dir(&fdir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
            .count()
    };
    assert_eq!(entries(), 2);
    // The new build: its first call clears what the old one stored.
    let memory2 = Memory::new(dir.path());
    let f = CachedFn::new(&memory2, "tests::changed", 2);
    let Lookup::Miss(p) = f.lookup::<_, u32>(&(5u32,)) else {
        panic!("an entry of another fingerprint was returned");
    };
    assert_eq!(p.run(|| 51), 51);
    assert_eq!(entries(), 1);
}

static UNIT_CALLS: AtomicUsize = AtomicUsize::new(0);

// Parameter names that an expansion could easily shadow.
#[cache(MEMORY)]
fn side_effect_free(value: &str, pending: u8, fp: u8) {
    UNIT_CALLS.fetch_add(1, Ordering::SeqCst);
    let _ = (value, pending, fp);
}

#[test]
fn unit_results_are_cached_too() {
    side_effect_free("a", 1, 2);
    side_effect_free("a", 1, 2);
    assert_eq!(UNIT_CALLS.load(Ordering::SeqCst), 1);
}
