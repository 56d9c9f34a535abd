//! The public remote-task API, with requests served in this very process
//! (the same build, as any worker process of it would be).

#![cfg(feature = "remote")]

use joblib_parallel::remote::{FORMAT_VERSION, build_identity};
use joblib_parallel::{
    Batch, BoxError, Error, Parallel, ParallelBackend, Shared, delayed, delayed_remote,
    serve_request, try_delayed_remote,
};

/// What the test backend does to each batch.
#[derive(Clone, Copy)]
enum Mode {
    /// Serve the request here and complete the batch from the reply.
    Serve,
    /// Change the build identity in the request before serving it.
    OtherBuild,
    /// Change the format version in the request before serving it.
    OtherVersion,
    /// Report that the worker died.
    Die,
    /// Complete the batch from bytes that are not a reply.
    Garbage,
    /// Point the entry offset outside the program's code.
    WildEntry,
    /// Encode the arguments into a buffer that holds bytes already.
    Recycle,
}

/// A transport that hands out a buffer holding the bytes of an earlier
/// request, as a transport reusing its buffers does.
struct Recycling;

impl joblib_parallel::remote::Transport for Recycling {
    fn args_buffer(&mut self) -> Vec<u8> {
        b"bytes left by an earlier request".to_vec()
    }
}

struct InProcess(Mode);

impl ParallelBackend for InProcess {
    fn name(&self) -> &str {
        "in-process"
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        let mode = self.0;
        let mut remote = match batch.into_remote("in-process") {
            Ok(remote) => remote,
            Err(not_remote) => {
                not_remote.fail("in-process");
                return Ok(());
            }
        };
        std::thread::spawn(move || {
            if remote.is_cancelled() {
                return remote.skip();
            }
            let made = match mode {
                Mode::Recycle => remote.request(&mut Recycling),
                _ => remote.request_bytes(),
            };
            let mut request = match made {
                Ok(r) => r,
                Err(e) => return remote.fail(e),
            };
            match mode {
                Mode::OtherBuild => request[16] ^= 0x01,
                Mode::OtherVersion => request[4..8].copy_from_slice(&99u32.to_le_bytes()),
                Mode::Die => return remote.worker_died(42, "was killed by signal 9 (SIGKILL)"),
                Mode::Garbage => return remote.complete(b"not a reply"),
                Mode::WildEntry => {
                    // After the magic, version, build (length and bytes),
                    // call id and first index.
                    let at = 8 + 8 + build_identity().len() + 16;
                    request[at..at + 8].copy_from_slice(&(1i64 << 60).to_le_bytes());
                }
                Mode::Serve | Mode::Recycle => {}
            }
            // SAFETY: the request was made just above by this process.
            let reply = unsafe { serve_request(&request) };
            remote.complete(&reply);
        });
        Ok(())
    }
}

fn run<T>(mode: Mode, tasks: impl IntoIterator<Item = T>) -> Result<Vec<T::Output>, Error>
where
    T: joblib_parallel::IntoTask<Task = T> + joblib_parallel::Task,
    T::Output: Send,
{
    Parallel::new()
        .backend(InProcess(mode))
        .n_jobs(2)
        .batch_size(2)
        .run(tasks)
}

#[test]
fn requests_round_trip_with_results_errors_and_panics() {
    let out = run(
        Mode::Serve,
        (0..10u64).map(|x| delayed_remote(|x: u64| x * x, x)),
    )
    .unwrap();
    assert_eq!(out, (0..10u64).map(|x| x * x).collect::<Vec<_>>());

    let parse = |s: String| s.parse::<u8>();
    let err = run(
        Mode::Serve,
        ["1", "2", "300"].map(|s| try_delayed_remote(parse, s.to_owned())),
    )
    .unwrap_err();
    match err {
        Error::Task { index, source } => {
            assert_eq!(index, 2);
            assert!(source.to_string().contains("too large"), "{source}");
        }
        other => panic!("{other:?}"),
    }

    let err = run(
        Mode::Serve,
        (0..4u32).map(|i| delayed_remote(|i: u32| assert!(i != 3, "task three refuses"), i)),
    )
    .unwrap_err();
    match err {
        Error::Panic { index, message } => {
            assert_eq!(index, 3);
            assert!(message.starts_with("task three refuses"), "{message}");
            assert!(message.contains("worker backtrace:"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_transports_buffer_is_cleared_before_the_arguments_are_encoded() {
    let out = run(
        Mode::Recycle,
        (0..10u64).map(|x| delayed_remote(|x: u64| x + 1, x)),
    )
    .unwrap();
    assert_eq!(out, (1..11).collect::<Vec<u64>>());
}

#[test]
fn shared_values_travel_by_id_and_decode_as_themselves() {
    let table = Shared::new(vec![5u64, 6, 7]);
    let out = run(
        Mode::Serve,
        (0..3).map(|i| {
            delayed_remote(
                |(t, i): (Shared<Vec<u64>>, usize)| (t.id(), t[i]),
                (table.clone(), i),
            )
        }),
    )
    .unwrap();
    assert_eq!(out, [(table.id(), 5), (table.id(), 6), (table.id(), 7)]);
}

#[test]
fn another_build_or_format_version_is_refused_naming_both() {
    let tasks = || (0..2u64).map(|x| delayed_remote(|x: u64| x + 1, x));
    let err = run(Mode::OtherBuild, tasks()).unwrap_err().to_string();
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains(build_identity()), "{err}");
    assert!(err.contains("made by build"), "{err}");

    let err = run(Mode::OtherVersion, tasks()).unwrap_err().to_string();
    assert!(err.contains("version 99"), "{err}");
    assert!(err.contains(&format!("version {FORMAT_VERSION}")), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn an_entry_point_outside_the_programs_code_is_refused_not_jumped_to() {
    let err = run(
        Mode::WildEntry,
        (0..2u64).map(|x| delayed_remote(|x: u64| x + 1, x)),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("outside the code"), "{err}");
}

#[test]
fn tasks_that_cannot_travel_are_refused_naming_delayed_remote() {
    let err = run(Mode::Serve, (0..2u32).map(|x| delayed(|x: u32| x, x)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("delayed_remote"), "{err}");
}

#[test]
fn a_dead_worker_and_a_garbled_reply_are_reported() {
    let tasks = || (0..2u64).map(|x| delayed_remote(|x: u64| x + 1, x));
    match run(Mode::Die, tasks()).unwrap_err() {
        Error::WorkerDied {
            index,
            tasks,
            pid,
            reason,
        } => {
            assert_eq!((index, tasks, pid), (0, 2, 42));
            assert!(reason.contains("SIGKILL"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let err = run(Mode::Garbage, tasks()).unwrap_err().to_string();
    assert!(err.contains("not a joblib remote message"), "{err}");
}

#[test]
fn garbled_requests_get_a_reply_not_a_panic() {
    // SAFETY: none of these is a request of this build: each is refused
    // before any address is used.
    for bytes in [&b""[..], b"JLRQ", b"JLRQ\x01\x00\x00\x00\xff", b"garbage"] {
        let reply = unsafe { serve_request(bytes) };
        assert!(reply.starts_with(b"JLRP"), "{bytes:?}");
    }
}

fn weighted(x: u64, weight: u64, label: String) -> String {
    format!("{label}{}", x * weight)
}

fn checked(a: u32, b: u32) -> Result<u32, String> {
    a.checked_sub(b)
        .ok_or_else(|| format!("{a} - {b} is negative"))
}

#[test]
fn macro_made_tasks_round_trip_with_several_arguments() {
    let out = run(
        Mode::Serve,
        (0..5u64).map(|x| joblib_parallel::delayed_remote!(weighted, x, 3, "w".to_owned())),
    )
    .unwrap();
    assert_eq!(out, ["w0", "w3", "w6", "w9", "w12"]);

    let out = run(
        Mode::Serve,
        (0..3u32).map(|_| joblib_parallel::delayed_remote!(std::process::id)),
    )
    .unwrap();
    assert_eq!(out, [std::process::id(); 3]);

    let err = run(
        Mode::Serve,
        (0..4u32).map(|b| joblib_parallel::try_delayed_remote!(checked, 2, b)),
    )
    .unwrap_err();
    match err {
        Error::Task { index, source } => {
            assert_eq!(index, 3);
            assert!(source.to_string().contains("2 - 3 is negative"), "{source}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn double(x: u64) -> u64 {
    2 * x
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn tasks_of_one_batch_may_call_different_functions() {
    // One task type (`fn(u64) -> u64`), two functions: each task carries
    // its own.
    let out = run(
        Mode::Serve,
        (0..9u64).map(|x| {
            let f: fn(u64) -> u64 = if x % 3 == 0 { double } else { square };
            delayed_remote(f, x)
        }),
    )
    .unwrap();
    let expected: Vec<u64> = (0..9u64)
        .map(|x| if x % 3 == 0 { double(x) } else { square(x) })
        .collect();
    assert_eq!(out, expected);
}
