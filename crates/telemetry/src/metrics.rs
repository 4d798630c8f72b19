//! A small Prometheus registry every SPLAI process records into (one per process, [`global`]):
//! counters, histograms (seconds) and gauges by (name, labels), rendered in the text exposition
//! format. Components `describe` their series once; the gateway serves it at `/metrics`, and
//! `splai scheduler` / `splai executor` on `telemetry.metrics_listen`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds (seconds) of every histogram.
const BUCKETS: [f64; 16] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

type Labels = Vec<(String, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Series {
    /// (name, kind, help) in the order described.
    described: Vec<(&'static str, &'static str, &'static str)>,
    counters: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
}

/// This process's registry.
pub fn global() -> &'static Metrics {
    static GLOBAL: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(Metrics::default)
}

/// The registry: counters and histograms by (name, labels).
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<Series>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render_labels(l: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

/// A gauge reading taken at scrape time.
#[derive(Debug, Clone)]
pub struct Gauge {
    pub name: &'static str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Gauge {
    pub fn new(name: &'static str, pairs: &[(&str, &str)], value: f64) -> Self {
        Self { name, labels: labels(pairs), value }
    }
}

impl Metrics {
    /// Declare series: (name, "counter" | "histogram" | "gauge", help). Repeats are ignored.
    pub fn describe(&self, series: &[(&'static str, &'static str, &'static str)]) {
        let mut s = self.series.lock().expect("metrics lock");
        for d in series {
            if !s.described.iter().any(|(n, _, _)| *n == d.0) {
                s.described.push(*d);
            }
        }
    }

    /// Set a gauge held in the registry.
    pub fn set(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        let mut s = self.series.lock().expect("metrics lock");
        s.gauges.insert((name, labels(pairs)), value);
    }

    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)], by: f64) {
        let mut s = self.series.lock().expect("metrics lock");
        *s.counters.entry((name, labels(pairs))).or_default() += by;
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        let mut s = self.series.lock().expect("metrics lock");
        let h = s.histograms.entry((name, labels(pairs))).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The exposition text: every described series with its HELP and TYPE; `gauges` are readings
    /// taken by the caller at scrape time.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let s = self.series.lock().expect("metrics lock");
        let mut out = String::new();
        for (name, kind, help) in &s.described {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match *kind {
                "counter" => {
                    for ((_, l), v) in s.counters.iter().filter(|((n, _), _)| n == name) {
                        let _ = writeln!(out, "{name}{} {v}", render_labels(l, None));
                    }
                }
                "histogram" => {
                    for ((_, l), h) in s.histograms.iter().filter(|((n, _), _)| n == name) {
                        for (i, bound) in BUCKETS.iter().enumerate() {
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {}",
                                render_labels(l, Some(("le", bound.to_string()))),
                                h.counts[i]
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            render_labels(l, Some(("le", "+Inf".into()))),
                            h.count
                        );
                        let _ = writeln!(out, "{name}_sum{} {}", render_labels(l, None), h.sum);
                        let _ = writeln!(out, "{name}_count{} {}", render_labels(l, None), h.count);
                    }
                }
                _ => {
                    for ((_, l), v) in s.gauges.iter().filter(|((n, _), _)| n == name) {
                        let _ = writeln!(out, "{name}{} {v}", render_labels(l, None));
                    }
                    for g in gauges.iter().filter(|g| g.name == *name) {
                        let _ = writeln!(out, "{name}{} {}", render_labels(&g.labels, None), g.value);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let m = Metrics::default();
        m.describe(&[
            ("splai_job_latency_seconds", "histogram", "Submit to done."),
            ("splai_dead_letters_total", "counter", "Dead letters."),
            ("splai_events_consumed_total", "counter", "Records applied."),
            ("splai_runnable_tasks", "gauge", "Runnable tasks."),
            ("splai_workers_live", "gauge", "Live workers."),
        ]);
        m.set("splai_workers_live", &[], 2.0);
        m.inc("splai_dead_letters_total", &[], 1.0);
        m.inc("splai_events_consumed_total", &[("topic", "job-events")], 3.0);
        m.observe("splai_job_latency_seconds", &[("type", "chat"), ("outcome", "succeeded")], 0.3);
        m.observe("splai_job_latency_seconds", &[("type", "chat"), ("outcome", "succeeded")], 7.0);
        let text = m.render(&[Gauge::new("splai_runnable_tasks", &[("tenant", "a\"b")], 4.0)]);
        assert!(text.contains("# TYPE splai_job_latency_seconds histogram\n"));
        assert!(text.contains(
            "splai_job_latency_seconds_bucket{type=\"chat\",outcome=\"succeeded\",le=\"0.25\"} 0\n"
        ));
        assert!(text.contains(
            "splai_job_latency_seconds_bucket{type=\"chat\",outcome=\"succeeded\",le=\"0.5\"} 1\n"
        ));
        assert!(text.contains(
            "splai_job_latency_seconds_bucket{type=\"chat\",outcome=\"succeeded\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("splai_job_latency_seconds_sum{type=\"chat\",outcome=\"succeeded\"} 7.3\n"));
        assert!(text.contains("splai_dead_letters_total 1\n"));
        assert!(text.contains("splai_events_consumed_total{topic=\"job-events\"} 3\n"));
        assert!(text.contains("splai_runnable_tasks{tenant=\"a\\\"b\"} 4\n"));
        assert!(text.contains("splai_workers_live 2\n"));
    }
}
