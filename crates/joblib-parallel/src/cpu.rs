//! How many CPUs this process may really use.

use std::path::Path;
use std::sync::OnceLock;

use crate::error::Error;

/// The environment variable that caps [`cpu_count`].
pub const MAX_CPU_COUNT_ENV: &str = "JOBLIB_MAX_CPU_COUNT";

/// The number of CPUs this process can use: the least of the logical CPUs
/// online, the CPUs in its scheduler affinity mask, its cgroup (v1 or v2) CPU
/// quota rounded up, and the `JOBLIB_MAX_CPU_COUNT` environment variable.
/// Always at least 1.
///
/// A container limited to 2 CPUs on a 64-core host gets 2, not 64. The
/// value is computed once per process; `JOBLIB_MAX_CPU_COUNT` is read then,
/// and ignored if it is not a positive integer.
pub fn cpu_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let env = std::env::var(MAX_CPU_COUNT_ENV).ok();
        least_of(&[
            logical_cpus(),
            affinity_cpus(),
            cgroup_cpus(),
            env.as_deref().and_then(parse_env_limit),
        ])
    })
}

/// The number of physical cores this process can use: cores with
/// hyper-threading siblings count once, and the result is capped by
/// [`cpu_count`]. Falls back to [`cpu_count`] where the topology is unknown.
pub fn cpu_count_physical() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        physical_cores()
            .unwrap_or(usize::MAX)
            .min(cpu_count())
            .max(1)
    })
}

/// The number of workers that `n_jobs` means, with joblib's conventions:
/// a positive value is itself, `-1` is [`cpu_count`], `-2` all CPUs but one,
/// and any `n < -1` is `cpu_count + 1 + n` (at least 1).
///
/// # Errors
///
/// [`Error::InvalidConfig`] for `0`, which means nothing.
///
/// ```
/// use joblib_parallel::{cpu_count, effective_n_jobs};
///
/// assert_eq!(effective_n_jobs(3)?, 3);
/// assert_eq!(effective_n_jobs(-1)?, cpu_count());
/// assert!(effective_n_jobs(0).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn effective_n_jobs(n_jobs: i32) -> Result<usize, Error> {
    resolve_n_jobs(n_jobs, cpu_count())
}

pub(crate) fn resolve_n_jobs(n_jobs: i32, cpus: usize) -> Result<usize, Error> {
    match usize::try_from(n_jobs) {
        Ok(0) => Err(Error::config(
            "n_jobs",
            "0 is not a number of workers (use a positive count, or -1 for all CPUs)",
        )),
        Ok(n) => Ok(n),
        Err(_) => {
            // n < 0: cpus + 1 + n, i.e. cpus - (|n| - 1).
            let below = usize::try_from(n_jobs.unsigned_abs() - 1).unwrap_or(usize::MAX);
            Ok(cpus.saturating_sub(below).max(1))
        }
    }
}

fn least_of(limits: &[Option<usize>]) -> usize {
    limits
        .iter()
        .flatten()
        .copied()
        .min()
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1)
}

fn parse_env_limit(value: &str) -> Option<usize> {
    value.trim().parse::<usize>().ok().filter(|&n| n > 0)
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn logical_cpus() -> Option<usize> {
    read("/sys/devices/system/cpu/online")
        .and_then(|list| parse_cpu_list(&list))
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
}

fn affinity_cpus() -> Option<usize> {
    let status = read("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))?;
    parse_cpu_list(line.trim_start_matches("Cpus_allowed_list:"))
}

/// Counts the CPUs of a Linux CPU list such as `"0-3,8,10-11"`.
pub(crate) fn parse_cpu_list(list: &str) -> Option<usize> {
    let mut count = 0usize;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let n = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                b.checked_sub(a)?.checked_add(1)?
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
        count = count.checked_add(n)?;
    }
    (count > 0).then_some(count)
}

/// CPUs allowed by a cgroup v2 `cpu.max` file (`"max 100000"` is no limit).
pub(crate) fn parse_cpu_max(text: &str) -> Option<usize> {
    let mut fields = text.split_whitespace();
    let quota = fields.next()?;
    let period = fields.next().unwrap_or("100000");
    quota_to_cpus(quota.parse().ok()?, period.parse().ok()?)
}

/// CPUs allowed by a cgroup v1 quota and period (a quota of -1 is no limit).
pub(crate) fn quota_to_cpus(quota: i64, period: i64) -> Option<usize> {
    if quota <= 0 || period <= 0 {
        return None;
    }
    let cpus = quota.checked_add(period - 1)? / period;
    usize::try_from(cpus).ok().map(|c| c.max(1))
}

fn cgroup_cpus() -> Option<usize> {
    let membership = read("/proc/self/cgroup").unwrap_or_default();
    let mut limits = Vec::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            // cgroup v2: the unified hierarchy.
            for dir in [
                format!("/sys/fs/cgroup/{path}"),
                "/sys/fs/cgroup".to_owned(),
            ] {
                if let Some(n) = read(format!("{dir}/cpu.max")).and_then(|t| parse_cpu_max(&t)) {
                    limits.push(n);
                }
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            for dir in [
                format!("/sys/fs/cgroup/{controllers}/{path}"),
                format!("/sys/fs/cgroup/cpu/{path}"),
                "/sys/fs/cgroup/cpu".to_owned(),
            ] {
                let number = |file: &str| read(format!("{dir}/{file}"))?.trim().parse::<i64>().ok();
                let quota = number("cpu.cfs_quota_us");
                let period = number("cpu.cfs_period_us");
                limits.extend(quota.zip(period).and_then(|(q, p)| quota_to_cpus(q, p)));
            }
        }
    }
    limits.into_iter().min()
}

fn physical_cores() -> Option<usize> {
    let online = read("/sys/devices/system/cpu/online")?;
    let mut cores = std::collections::BTreeSet::new();
    for cpu in expand_cpu_list(&online)? {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let package = read(format!("{dir}/physical_package_id"))?;
        let core = read(format!("{dir}/core_id"))?;
        cores.insert((package.trim().to_owned(), core.trim().to_owned()));
    }
    (!cores.is_empty()).then_some(cores.len())
}

fn expand_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_jobs_follows_joblib() {
        assert_eq!(resolve_n_jobs(1, 8).unwrap(), 1);
        assert_eq!(resolve_n_jobs(16, 8).unwrap(), 16);
        assert_eq!(resolve_n_jobs(-1, 8).unwrap(), 8);
        assert_eq!(resolve_n_jobs(-2, 8).unwrap(), 7);
        assert_eq!(resolve_n_jobs(-8, 8).unwrap(), 1);
        assert_eq!(resolve_n_jobs(-100, 8).unwrap(), 1);
        assert_eq!(resolve_n_jobs(i32::MIN, 8).unwrap(), 1);
        let err = resolve_n_jobs(0, 8).unwrap_err();
        assert!(
            err.to_string()
                .contains("n_jobs: 0 is not a number of workers"),
            "{err}"
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3\n"), Some(4));
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(parse_cpu_list("\t5"), Some(1));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(expand_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
    }

    #[test]
    fn cgroup_quotas() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("200000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("150000 100000"), Some(2));
        assert_eq!(parse_cpu_max("50000 100000"), Some(1));
        assert_eq!(quota_to_cpus(-1, 100_000), None);
        assert_eq!(quota_to_cpus(400_000, 100_000), Some(4));
        assert_eq!(quota_to_cpus(100_000, 0), None);
    }

    #[test]
    fn env_limit_and_least() {
        assert_eq!(parse_env_limit(" 3 "), Some(3));
        assert_eq!(parse_env_limit("0"), None);
        assert_eq!(parse_env_limit("lots"), None);
        assert_eq!(least_of(&[Some(8), None, Some(2), Some(4)]), 2);
        assert!(least_of(&[None, None]) >= 1);
    }

    #[test]
    fn counts_are_consistent() {
        let n = cpu_count();
        assert!(n >= 1);
        assert!(n <= std::thread::available_parallelism().map_or(usize::MAX, |n| n.get()));
        let p = cpu_count_physical();
        assert!((1..=n).contains(&p), "{p} physical of {n}");
    }
}
