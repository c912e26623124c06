//! CPU time, memory and load read from `/proc`: per thread, so the adapters' runtime can be told
//! apart from the load generator's inside one process, and per process (the bench itself, the
//! nats-server). Linux only; elsewhere every figure is `None` or zero.

use std::path::Path;

/// `/proc` reports CPU time in clock ticks of `USER_HZ`, which the kernel fixes at 100 on every
/// architecture onedoor runs on (it is part of the ABI, unlike the kernel's own `HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// Thread-name prefix of the adapters' runtime (a Linux thread name holds 15 bytes).
pub(crate) const ADAPTER_THREAD: &str = "od-adapter";
/// Thread-name prefix of the load generator's runtime.
pub(crate) const CLIENT_THREAD: &str = "od-client";

/// CPU seconds (user + system) at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSnapshot {
    /// The whole bench process, threads that already ended included.
    pub process_s: f64,
    /// Live threads of the adapters' runtime.
    pub adapter_s: f64,
    /// Live threads of the load generator's runtime.
    pub client_s: f64,
    /// The nats-server processes, when the bench started them.
    pub nats_s: Option<f64>,
}

impl CpuSnapshot {
    pub fn take(nats_pids: &[u32]) -> Self {
        let nats = nats_pids
            .iter()
            .map(|pid| stat_cpu_s(&Path::new("/proc").join(pid.to_string()).join("stat")))
            .collect::<Option<Vec<f64>>>()
            .filter(|cpu| !cpu.is_empty())
            .map(|cpu| cpu.iter().sum());
        let mut snapshot = CpuSnapshot {
            process_s: process_cpu_s().unwrap_or(0.0),
            nats_s: nats,
            ..CpuSnapshot::default()
        };
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return snapshot;
        };
        for task in tasks.flatten() {
            let dir = task.path();
            let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
                continue;
            };
            let Some(cpu) = stat_cpu_s(&dir.join("stat")) else {
                continue;
            };
            if name.starts_with(ADAPTER_THREAD) {
                snapshot.adapter_s += cpu;
            } else if name.starts_with(CLIENT_THREAD) {
                snapshot.client_s += cpu;
            }
        }
        snapshot
    }

    /// What was spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuSnapshot) -> CpuSnapshot {
        CpuSnapshot {
            process_s: self.process_s - earlier.process_s,
            adapter_s: self.adapter_s - earlier.adapter_s,
            client_s: self.client_s - earlier.client_s,
            nats_s: self.nats_s.zip(earlier.nats_s).map(|(a, b)| a - b),
        }
    }
}

/// utime + stime of a `stat` file, in seconds. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn stat_cpu_s(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    // After the name: state(3) ppid(4) … utime(14) stime(15); index 0 here is field 3.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// User and system CPU seconds of this process so far.
pub(crate) fn process_cpu_s() -> Option<f64> {
    stat_cpu_s(Path::new("/proc/self/stat"))
}

/// User and system CPU seconds of process `pid` so far.
pub(crate) fn pid_cpu_s(pid: u32) -> Option<f64> {
    stat_cpu_s(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

/// A `kB` line of `/proc/self/status` (`VmHWM`: peak resident set; `VmRSS`: now), in MiB.
pub(crate) fn status_mib(field: &str) -> Option<f64> {
    status_mib_in(Path::new("/proc/self/status"), field)
}

/// [`status_mib`] of process `pid`.
pub(crate) fn status_mib_of(pid: u32, field: &str) -> Option<f64> {
    status_mib_in(
        &Path::new("/proc").join(pid.to_string()).join("status"),
        field,
    )
}

fn status_mib_in(path: &Path, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The 1-minute load average, to say how busy the machine was during a run.
pub(crate) fn load_average_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The 1, 5 and 15 minute load averages, as `uptime` prints them.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        let snapshot = CpuSnapshot::take(&[std::process::id()]);
        assert!(snapshot.process_s >= 0.0);
        assert!(snapshot.nats_s.is_some());
        assert!(status_mib("VmHWM").is_some_and(|m| m > 0.0));
    }
}
