//! Measured utilization from /proc: whole-machine CPU % since the previous sample, and this
//! process's resident memory.

/// CPU sampler over /proc/stat.
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: Option<(u64, u64)>,
}

fn read_stat() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    let total: u64 = fields.iter().sum();
    Some((idle, total))
}

impl CpuSampler {
    /// CPU busy %, 0–100 × cores, since the last call (0 on the first).
    pub fn sample(&mut self, cores: u32) -> f64 {
        let Some(now) = read_stat() else { return 0.0 };
        let pct = match self.last {
            Some((idle0, total0)) if now.1 > total0 => {
                let busy = (now.1 - total0).saturating_sub(now.0.saturating_sub(idle0));
                busy as f64 / (now.1 - total0) as f64 * 100.0 * f64::from(cores.max(1))
            }
            _ => 0.0,
        };
        self.last = Some(now);
        pct
    }
}

/// Resident memory of this process, MiB.
pub fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Total memory of the machine, MiB.
pub fn total_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_are_in_range() {
        let mut s = super::CpuSampler::default();
        assert_eq!(s.sample(2), 0.0);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let pct = s.sample(2);
        assert!((0.0..=200.0).contains(&pct), "{pct}");
        assert!(super::rss_mb() > 0 && super::total_memory_mb() > 0);
    }
}
