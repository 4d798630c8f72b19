//! The hybrid planner (issue 18 part 3) on the real model through `splai up`: an `auto` job's
//! planning task asks SmolLM2 for a DAG under the DAG schema; a valid proposal is appended and
//! runs; a refused one (forced here by pinning an invalid `proposal`, the test hook) gives way
//! to the template plan with the reason on the task's lineage and the job's event stream; the
//! same request on the same model plans the same DAG.

use std::time::Duration;

use crate::common::{Up, get, job_state, post, read_stream, wait_job};
use serde_json::{Value, json};
use splai_events::JobState;

const TICKETS: &str = "#101 [billing] The invoice PDF is blank when exported.
#102 [search] Search takes over ten seconds to answer.
#103 [billing] Downloaded invoices have blank pages.
#104 [login] Password reset email never arrives.
#105 [billing] The exported invoice PDF comes out empty.";

const GOAL: &str = "List the problems in these tickets.";

async fn run(url: &str, id: &str, input: Value) -> Value {
    let request = json!({"type": "auto", "job_id": id, "cache": false, "input": input});
    let (status, body) = post(url, "/v1/jobs", &request, None).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(url, id, None, Duration::from_secs(600)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    job
}

/// The planning task's lineage entry and the ids of every task of the job.
async fn plan_of(url: &str, id: &str) -> (Value, Vec<String>) {
    let (status, lineage) = get(url, &format!("/v1/jobs/{id}/lineage"), None).await.unwrap();
    assert_eq!(status, 200, "{lineage}");
    let tasks = lineage["tasks"].as_array().unwrap();
    let plan = tasks.iter().find(|t| t["task_id"] == "plan").expect("a planning task").clone();
    (plan, tasks.iter().map(|t| t["task_id"].as_str().unwrap().to_string()).collect())
}

async fn artifact(url: &str, id: &str, task: &str) -> Value {
    let (status, body) = get(url, &format!("/v1/jobs/{id}/artifacts/{task}/1"), None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_plans_a_valid_dag_that_runs_and_plans_it_the_same_way_again() {
    if !crate::common::models_present() {
        return;
    }
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let job = run(&up.url, "auto-1", json!({"goal": GOAL, "text": TICKETS})).await;
    let (plan, ids) = plan_of(&up.url, "auto-1").await;
    let proposal = artifact(&up.url, "auto-1", "plan").await;
    let expansion = &plan["expansion"];
    assert!(expansion["fallback_reason"].is_null(), "the model's plan was refused: {expansion}\n{proposal}");
    let added: Vec<&str> =
        expansion["added"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(!added.is_empty() && added.iter().all(|id| id.starts_with("plan.step")), "{added:?}");
    assert!(added.iter().all(|a| ids.iter().any(|i| i == a)), "every proposed step is a task of the job");
    eprintln!("the model's plan: {}", proposal["text"]);
    let proposed: Value = serde_json::from_str(proposal["text"].as_str().unwrap()).unwrap();
    let output = format!("plan.{}", proposed["output"].as_str().unwrap());
    assert_eq!(job["result_task"], output, "the plan's output is the job's result: {job}");
    assert!(job["result"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{job}");

    // Greedy decoding, the cache off: the same request plans the same DAG.
    run(&up.url, "auto-2", json!({"goal": GOAL, "text": TICKETS})).await;
    let (again, _) = plan_of(&up.url, "auto-2").await;
    assert_eq!(again["expansion"]["added"], expansion["added"]);
    assert_eq!(artifact(&up.url, "auto-2", "plan").await["text"], proposal["text"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_proposal_falls_back_to_the_template_plan_with_the_reason() {
    if !crate::common::models_present() {
        return;
    }
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let invalid = json!({"tasks": [{"id": "step1", "kind": "llm_inference", "parents": ["ghost"],
                                   "inputs": {"prompt": {"literal": "Count them."}}}], "output": "step1"});
    let job = run(&up.url, "auto-bad", json!({"goal": GOAL, "text": TICKETS, "proposal": invalid})).await;
    let (plan, ids) = plan_of(&up.url, "auto-bad").await;
    let reason = plan["expansion"]["fallback_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no fallback reason: {plan}"))
        .to_string();
    assert_eq!(
        reason,
        "sub-DAG refused (missing_parent): task `plan.step1` names parent `ghost`, which is not in the DAG"
    );
    assert!(ids.contains(&"plan.summary".to_string()), "the batch_analysis template ran: {ids:?}");
    assert!(job["result"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{job}");
    // The whole history (resumed from its start): the job ended before the stream was opened.
    let events = read_stream(&up.url, "auto-bad", Some("0")).await;
    let expanded = events.iter().find(|(_, e, _)| e == "job.expanded").expect("job.expanded on the stream");
    assert_eq!(expanded.2["fallback_reason"], reason);
}
