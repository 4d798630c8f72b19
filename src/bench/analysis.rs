//! `splai bench analysis`: `batch_analysis` in records mode on a generated ticket file
//! ([`super::tickets`], seeded: causes, paraphrased wordings, counts, users and distractors
//! drawn at random) through a full in-process stack on the real models; prints the time, the
//! ranked groups beside the generator's truth, and pairwise precision/recall of group
//! membership. The default size is the issue's: 24 causes × 10–20 tickets.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use splai_config::Settings;

use super::tickets::{TicketFile, pair_scores, table_groups};
use crate::up::wait_ready;
use splai_stack::{Stack, StackOptions};

#[derive(Debug, clap::Args)]
pub struct AnalysisBenchArgs {
    /// Generator seed (11–14 chose the default threshold; others are unseen data).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Distinct causes (at most 24).
    #[arg(long, default_value_t = 24)]
    pub causes: usize,
    /// Fewest tickets per cause.
    #[arg(long, default_value_t = 10)]
    pub min: usize,
    /// Most tickets per cause.
    #[arg(long, default_value_t = 20)]
    pub max: usize,
    /// Cosine threshold of the grouping (the template's default when absent).
    #[arg(long)]
    pub threshold: Option<f64>,
}

pub async fn run(settings: &Settings, args: &AnalysisBenchArgs) -> anyhow::Result<()> {
    if args.causes == 0 || args.min == 0 || args.max < args.min {
        bail!("--causes and --min must be at least 1, and --max at least --min");
    }
    let file = TicketFile::generate(args.seed, args.causes, args.min, args.max);
    let (_dir, settings) = super::scratch_settings(settings, "analysis")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let stack = Stack::start(&settings, &StackOptions { executors: cores, slots_per_executor: None }).await?;
    let client = crate::client::local(&stack.url)?;
    wait_ready(&client).await?;
    let mut input = json!({"mode": "records", "text": file.text()});
    if let Some(t) = args.threshold {
        input["threshold"] = json!(t);
    }
    let request = json!({"type": "batch_analysis", "job_id": "tickets", "input": input, "cache": false});
    let started = Instant::now();
    client.post("/v1/jobs", &request, None).await?;
    let job = client.wait_succeeded("tickets", Duration::from_secs(24 * 3600)).await?.document;
    let secs = started.elapsed().as_secs_f64();
    let table = job["result"]["table"].as_array().context("the result has no table")?;
    let groups = table_groups(table);
    let truth = file.truth();
    println!(
        "analysis seed={} tickets={} causes={} groups={} seconds={secs:.1} tickets_per_s={:.1}",
        args.seed,
        file.tickets.len(),
        truth.len(),
        groups.len(),
        file.tickets.len() as f64 / secs
    );
    for (rank, (cause, count, users)) in truth.iter().enumerate().take(5) {
        let row = table.get(rank);
        let got_cause = groups.get(rank).and_then(|g| g.first()).map(|&i| file.tickets[i].cause);
        println!(
            "rank={} truth: {:?} count={count} users={users} | splai: count={} users={} same_cause={}",
            rank + 1,
            TicketFile::cause_name(*cause),
            row.map_or(Value::Null, |r| r["count"].clone()),
            row.map_or(Value::Null, |r| r["sums"]["affected_users"].clone()),
            got_cause == Some(*cause)
        );
    }
    let (precision, recall) = pair_scores(&file, &groups);
    // Extraction: each member's extracted id and (via the group sums) users, against the truth.
    let (mut ids_right, mut members) = (0usize, 0usize);
    for (row, group) in table.iter().zip(&groups) {
        let ids = row["ids"].as_array().cloned().unwrap_or_default();
        for (id, &i) in ids.iter().zip(group) {
            members += 1;
            ids_right += usize::from(id.as_u64() == Some(u64::from(file.tickets[i].id)));
        }
    }
    let users_right = table
        .iter()
        .zip(&groups)
        .filter(|(row, group)| {
            let truth: u64 = group.iter().map(|&i| u64::from(file.tickets[i].users)).sum();
            row["sums"]["affected_users"].as_f64() == Some(truth as f64)
        })
        .count();
    println!(
        "pairwise precision={precision:.3} recall={recall:.3} ids_extracted_right={:.3} groups_with_exact_user_sums={users_right}/{}",
        ids_right as f64 / members.max(1) as f64,
        groups.len()
    );
    stack.shutdown().await
}
