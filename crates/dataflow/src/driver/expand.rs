//! Sub-DAGs at run time: when an expanding task succeeds, the sub-DAG its output proposes is
//! validated (`splai_ingest::plan::expand`, the rules every DAG obeys) and its tasks join the
//! job in the same dataflow step, so the job cannot finish in between, and cancellation,
//! deadlines, retries and placement treat them as any other task. Decided from the log alone:
//! a replay appends the same tasks.

use splai_events::{AttemptSucceeded, Dag, Envelope, JobExpanded, JobRequest, SubDag};
use splai_ingest::plan::{PlanError, expand as plan_expand, parse_subdag};

use super::Scheduler;
use super::apply::{add_tasks, placement_of};
use super::parking::Cause;
use crate::model::{Fact, Tk};

/// Append the sub-DAG of `tk`'s successful attempt `a`, when `tk` expands; `Err`: why the task
/// fails instead (an invalid proposal with no fallback).
pub(super) fn expand(
    s: &mut Scheduler,
    tk: Tk,
    tenant: &str,
    a: &AttemptSucceeded,
    out: &mut Vec<Envelope>,
) -> Result<(), String> {
    let (job, info) = (tk.0, s.reg.job(tk.0));
    let by = &info.dag.tasks[tk.1 as usize];
    let Some(spec) = &by.expand else { return Ok(()) };
    // The rules every DAG obeys, then the policy gate, which judged the job's tasks at admission.
    let judge = |sub: &SubDag| -> Result<(Dag, Vec<String>), String> {
        let (dag, added) = plan_expand(&info.dag, &by.id, sub, &s.opts.limits).map_err(|e| refusal(&e))?;
        let appended = Dag { tasks: dag.tasks[info.dag.tasks.len()..].to_vec() };
        let verdict = s.opts.policy.admit(tenant, &request_of(info), &appended);
        if !verdict.allowed {
            let rule = verdict.rule.as_deref().unwrap_or("default");
            return Err(format!(
                "sub-DAG refused (policy_denied): denied by policy rule `{rule}`: {}",
                verdict.reason
            ));
        }
        Ok((dag, added))
    };
    let proposed = a
        .subdag
        .as_ref()
        .ok_or_else(|| PlanError::InvalidInput {
            field: "subdag".into(),
            reason: "the attempt reported no sub-DAG".into(),
        })
        .and_then(parse_subdag)
        .map_err(|e| refusal(&e))
        .and_then(|sub| judge(&sub));
    let (mut dag, added, fallback_reason) = match (proposed, &spec.fallback) {
        (Ok((dag, added)), _) => (dag, added, None),
        (Err(why), Some(fallback)) => {
            let (dag, added) = judge(fallback).map_err(|e| format!("{why}; its fallback too: {e}"))?;
            (dag, added, Some(why))
        }
        (Err(why), None) => return Err(why),
    };
    let old = info.dag.tasks.len();
    if info.cache == Some(false) {
        dag.tasks[old..].iter_mut().for_each(|t| t.cache = Some(false));
    }
    // Edges the old tasks gained: `by`'s children now wait for the sub-DAG too.
    let gained: Vec<(String, u32)> = dag.tasks[..old]
        .iter()
        .zip(&info.dag.tasks)
        .enumerate()
        .flat_map(|(i, (new, was))| {
            new.parents.iter().filter(|p| !was.parents.contains(p)).map(move |p| (p.clone(), i as u32))
        })
        .collect();
    let placements: Vec<_> = dag.tasks[old..].iter().map(|t| placement_of(s, tenant, info, t)).collect();
    let (job_id, by_id) = (info.id.clone(), by.id.clone());
    let total = dag.tasks.len();
    s.reg.replace_dag(job, dag);
    s.reg.job_mut(job).placement.extend(placements);
    add_tasks(s, job, old..total);
    for (parent, child) in gained {
        if let Some(parent) = s.reg.task_of(job, &parent) {
            s.engine.feed(Fact::Edge(parent, (job, child)), s.now, 1);
        }
    }
    for id in &added {
        s.parking.release(&Cause::task(tenant, &job_id, id));
    }
    if s.mode.live {
        let dag = s.reg.job(job).dag.clone();
        let expanded =
            JobExpanded { job_id, task_id: by_id, attempt: a.attempt.attempt, added, dag, fallback_reason };
        out.push(super::emit::expanded(s, job, expanded));
    }
    Ok(())
}

/// What the policy gate needs of the job's request (the rest of it was planned at admission).
fn request_of(info: &super::registry::JobInfo) -> JobRequest {
    JobRequest {
        job_id: Some(info.id.clone()),
        job_type: info.job_type,
        input: serde_json::Value::Null,
        priority: info.priority,
        model: info.model.clone(),
        data_classification: info.data_classification,
        policy: None,
        timeout_s: None,
        max_retries: None,
        idempotency_key: None,
        dag: None,
        cache: None,
    }
}

fn refusal(e: &PlanError) -> String {
    format!("sub-DAG refused ({}): {e}", e.code())
}
