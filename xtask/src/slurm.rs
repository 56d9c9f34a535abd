//! A throw-away Slurm cluster of one node (this machine), to run the MPI
//! scenarios the way users launch them: `srun -n 3 --mpi=pmix`. Its
//! daemons (munged, slurmctld, slurmd) use a private folder under
//! `target/`, their own munge socket and ports, and are stopped afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::mpi::{apt_install, have_command};
use super::step;

/// The daemons started, stopped (by the pids in their pid files) when
/// dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for daemon in ["slurmd", "slurmctld", "munged"] {
            let pid_file = self.dir.join(format!("{daemon}.pid"));
            if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                let pid = pid.trim();
                if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
        }
        // The daemons need a moment to let go of their files.
        std::thread::sleep(Duration::from_millis(500));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn hostname() -> Result<String, String> {
    let out = Command::new("hostname")
        .arg("-s")
        .output()
        .map_err(|e| format!("hostname: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn start(root: &Path) -> Result<Cluster, String> {
    let dir = root.join(format!("target/slurm-{}", std::process::id()));
    for sub in ["state", "spool"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let host = hostname()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let d = dir.display();
    let socket = dir.join("munge.sock");
    let conf_text = format!(
        "ClusterName=joblibtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket}
CredType=cred/munge
SlurmctldPort=46817
SlurmdPort=46818
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
",
        socket = socket.display()
    );
    let conf = dir.join("slurm.conf");
    std::fs::write(&conf, conf_text).map_err(|e| format!("{}: {e}", conf.display()))?;
    let cluster = Cluster {
        dir: dir.clone(),
        conf: conf.clone(),
    };
    let key = Path::new("/etc/munge/munge.key");
    if !key.exists() {
        step("munge key", Command::new("mungekey").arg("--create"))?;
    }
    step(
        "munged",
        Command::new("munged").args([
            "--force",
            &format!("--socket={}", socket.display()),
            &format!("--pid-file={d}/munged.pid"),
            &format!("--log-file={d}/munged.log"),
            &format!("--seed-file={d}/munged.seed"),
        ]),
    )?;
    step("slurmctld", Command::new("slurmctld").arg("-f").arg(&conf))?;
    step("slurmd", Command::new("slurmd").arg("-f").arg(&conf))?;
    // Wait for the node to be ready.
    let start = Instant::now();
    loop {
        let out = Command::new("sinfo")
            .args(["-h", "-o", "%t"])
            .env("SLURM_CONF", &conf)
            .output();
        if let Ok(out) = out
            && String::from_utf8_lossy(&out.stdout).trim() == "idle"
        {
            return Ok(cluster);
        }
        if start.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(dir.join("slurmctld.log")).unwrap_or_default();
            return Err(format!(
                "the local Slurm node did not become idle in 60 s:\n{log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The MPI plugin of `srun` that suits Debian's Open MPI: PMIx if Slurm
/// has it, else PMI-2.
fn mpi_plugin(conf: &Path) -> String {
    let out = Command::new("srun")
        .arg("--mpi=list")
        .env("SLURM_CONF", conf)
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default();
    let plugin = out
        .split_whitespace()
        .find(|w| w.starts_with("pmix"))
        .unwrap_or("pmi2");
    plugin.to_owned()
}

/// Starts a one-node Slurm, runs `program` with `srun -n ranks`, stops it.
pub(crate) fn run_under_slurm(program: &Path, ranks: &str) -> Result<(), String> {
    let missing: Vec<&str> = [
        ("slurmctld", "slurmctld"),
        ("slurmd", "slurmd"),
        ("slurm-client", "srun"),
        ("munge", "munged"),
    ]
    .into_iter()
    .filter(|(_, command)| !have_command(command))
    .map(|(package, _)| package)
    .collect();
    apt_install(&missing)?;
    let cluster = start(&super::root())?;
    let plugin = mpi_plugin(&cluster.conf);
    let result = step(
        &format!("MPI scenarios under a local Slurm: srun -n {ranks} --mpi={plugin}"),
        Command::new("srun")
            .args(["-n", ranks, "--overcommit", &format!("--mpi={plugin}")])
            .arg(program)
            .env("SLURM_CONF", &cluster.conf),
    );
    drop(cluster);
    result
}
