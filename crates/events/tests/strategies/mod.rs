//! proptest strategies for every wire type.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::Value;
use splai_events::*;

pub fn ident() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_.-]{0,12}"
}

pub fn text() -> impl Strategy<Value = String> {
    // Arbitrary unicode, including quotes, escapes and astral-plane characters.
    any::<String>().prop_map(|s| s.chars().take(40).collect())
}

pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12f64).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub fn attempt_id() -> impl Strategy<Value = AttemptId> {
    (ident(), ident(), 1u32..50).prop_map(|(job_id, task_id, attempt)| AttemptId { job_id, task_id, attempt })
}

pub fn artifact() -> impl Strategy<Value = ArtifactRef> {
    (ident(), "[0-9a-f]{64}", any::<u64>()).prop_map(|(path, sha256, size_bytes)| ArtifactRef {
        path,
        sha256,
        size_bytes,
    })
}

pub fn task_kind() -> impl Strategy<Value = TaskKind> {
    prop_oneof![
        Just(TaskKind::LlmInference),
        Just(TaskKind::Embedding),
        Just(TaskKind::ToolExecution),
        Just(TaskKind::Aggregation),
    ]
}

pub fn requirements() -> impl Strategy<Value = Requirements> {
    (1u32..8, any::<u32>(), option::of(ident()), vec(ident(), 0..3), vec(ident(), 0..3)).prop_map(
        |(cpu_slots, memory_mb, model, tools, locality)| Requirements {
            cpu_slots,
            memory_mb,
            model,
            tools,
            locality,
        },
    )
}

pub fn task_input() -> impl Strategy<Value = TaskInput> {
    prop_oneof![
        json_value().prop_map(TaskInput::Literal),
        (ident(), option::of("/[a-z0-9/]{0,10}"))
            .prop_map(|(task, pointer)| TaskInput::Output(OutputRef { task, pointer })),
    ]
}

pub fn task_spec() -> impl Strategy<Value = TaskSpec> {
    (
        ident(),
        task_kind(),
        btree_map(ident(), task_input(), 0..3),
        vec(ident(), 0..3),
        requirements(),
        option::of(any::<u32>()),
        option::of(0u32..10),
        option::of(any::<bool>()),
        option::of(option::of(option::of(ident()))),
    )
        .prop_map(|(id, kind, inputs, parents, requirements, timeout_s, max_retries, cache, expand)| {
            TaskSpec {
                id,
                kind,
                inputs,
                parents,
                requirements,
                timeout_s,
                max_retries,
                cache,
                // A fallback's own tasks would make the strategy recursive; an empty one still
                // round-trips every field.
                expand: expand.map(|fallback| Expand {
                    fallback: fallback.map(|output| SubDag { tasks: Vec::new(), output }),
                }),
            }
        })
}

pub fn dag() -> impl Strategy<Value = Dag> {
    vec(task_spec(), 0..4).prop_map(|tasks| Dag { tasks })
}

pub fn job_type() -> impl Strategy<Value = JobType> {
    prop_oneof![
        Just(JobType::Chat),
        Just(JobType::BatchAnalysis),
        Just(JobType::Embed),
        Just(JobType::Explicit),
        Just(JobType::Auto)
    ]
}

pub fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![Just(Priority::Interactive), Just(Priority::Standard), Just(Priority::Batch)]
}

pub fn classification() -> impl Strategy<Value = DataClassification> {
    prop_oneof![
        Just(DataClassification::Public),
        Just(DataClassification::Internal),
        Just(DataClassification::Confidential),
        Just(DataClassification::Restricted),
    ]
}

pub fn job_request() -> impl Strategy<Value = JobRequest> {
    (
        (option::of(ident()), job_type(), json_value(), priority(), option::of(ident())),
        (
            classification(),
            option::of(ident()),
            option::of(any::<u32>()),
            option::of(0u32..10),
            option::of(text()),
            option::of(dag()),
            option::of(any::<bool>()),
        ),
    )
        .prop_map(
            |(
                (job_id, job_type, input, priority, model),
                (data_classification, policy, timeout_s, max_retries, idempotency_key, dag, cache),
            )| JobRequest {
                job_id,
                job_type,
                input,
                priority,
                model,
                data_classification,
                policy,
                timeout_s,
                max_retries,
                idempotency_key,
                dag,
                cache,
            },
        )
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(ident(), ident(), 0..3)
}

pub fn task_state() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        Just(TaskState::Pending),
        Just(TaskState::Runnable),
        Just(TaskState::Assigned),
        Just(TaskState::Running),
        Just(TaskState::Succeeded),
        Just(TaskState::Failed),
        Just(TaskState::DeadLettered),
        Just(TaskState::Cancelled),
    ]
}

pub fn job_state() -> impl Strategy<Value = JobState> {
    prop_oneof![
        Just(JobState::Queued),
        Just(JobState::Running),
        Just(JobState::Succeeded),
        Just(JobState::Failed),
        Just(JobState::Cancelled),
        Just(JobState::Archived),
    ]
}

pub fn resolved_input() -> impl Strategy<Value = ResolvedInput> {
    prop_oneof![
        json_value().prop_map(ResolvedInput::Literal),
        (artifact(), option::of("/[a-z0-9/]{0,10}"))
            .prop_map(|(artifact, pointer)| ResolvedInput::Artifact { artifact, pointer }),
    ]
}

pub fn revoke_reason() -> impl Strategy<Value = RevokeReason> {
    prop_oneof![
        Just(RevokeReason::Cancelled),
        Just(RevokeReason::TimedOut),
        Just(RevokeReason::WorkerLost),
        Just(RevokeReason::Superseded),
        Just(RevokeReason::NotHeld),
    ]
}

/// Every event kind.
pub fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        job_request().prop_map(Event::JobRequest),
        (ident(), text()).prop_map(|(job_id, reason)| Event::CancelJob(CancelJob { job_id, reason })),
        (any::<u64>(), ident()).prop_map(|(seq, hash)| Event::AuditAnchor(AuditAnchor { seq, hash })),
        (artifact(), any::<u32>(), vec((ident(), any::<u32>(), any::<u64>()), 0..4), any::<u64>()).prop_map(
            |(artifact, format, positions, events)| Event::SnapshotWritten(SnapshotWritten {
                artifact,
                format,
                positions: positions
                    .into_iter()
                    .map(|(topic, partition, next_offset)| LogPosition { topic, partition, next_offset })
                    .collect(),
                events,
            })
        ),
        (ident(), option::of(ident()))
            .prop_map(|(job_id, task_id)| Event::RequeueDeadLetter(RequeueDeadLetter { job_id, task_id })),
        ident().prop_map(|job_id| Event::ArchiveJob(ArchiveJob { job_id })),
        (
            ident(),
            any::<u32>(),
            any::<u64>(),
            (1u32..64, 0u32..64),
            (vec(ident(), 0..3), btree_map(ident(), 1u32..64, 0..2)),
            vec(ident(), 0..3),
            labels(),
            any::<u64>(),
            text()
        )
            .prop_map(
                |(
                    worker_id,
                    cores,
                    memory_mb,
                    slots,
                    (models, engines),
                    tools,
                    labels,
                    heartbeat_interval_ms,
                    version,
                )| {
                    Event::WorkerRegistered(WorkerRegistered {
                        worker_id,
                        cores,
                        memory_mb,
                        slots: slots.0,
                        light_slots: slots.1,
                        engines,
                        models,
                        tools,
                        labels,
                        heartbeat_interval_ms,
                        version,
                    })
                }
            ),
        (
            (ident(), any::<u64>(), 0f64..6400f64, any::<u64>()),
            vec(attempt_id(), 0..3),
            vec(ident(), 0..2),
            btree_map(ident(), (any::<u32>(), any::<u32>()), 0..2)
        )
            .prop_map(
                |((worker_id, seq, cpu_pct, memory_used_mb), running, warm_models, engines)| {
                    let engines = engines
                        .into_iter()
                        .map(|(m, (active, waiting))| (m, EngineLoad { active, waiting }))
                        .collect();
                    Event::Heartbeat(Heartbeat {
                        worker_id,
                        seq,
                        cpu_pct,
                        memory_used_mb,
                        running,
                        warm_models,
                        engines,
                    })
                }
            ),
        (ident(), text(), vec(attempt_id(), 0..3)).prop_map(|(worker_id, reason, handed_back)| {
            Event::WorkerLeaving(WorkerLeaving { worker_id, reason, handed_back })
        }),
        (
            attempt_id(),
            ident(),
            task_kind(),
            btree_map(ident(), resolved_input(), 0..3),
            requirements(),
            any::<u64>(),
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>())
        )
            .prop_map(
                |(
                    attempt,
                    worker_id,
                    kind,
                    inputs,
                    requirements,
                    deadline_ms,
                    (cache, expand, light, engine),
                )| {
                    Event::Assign(Assign {
                        attempt,
                        worker_id,
                        kind,
                        inputs,
                        requirements,
                        deadline_ms,
                        cache,
                        expand,
                        light,
                        engine,
                    })
                }
            ),
        (attempt_id(), ident(), revoke_reason())
            .prop_map(|(attempt, worker_id, reason)| Event::Revoke(Revoke { attempt, worker_id, reason })),
        (attempt_id(), text())
            .prop_map(|(attempt, reason)| Event::TaskUnschedulable(TaskUnschedulable { attempt, reason })),
        (ident(), ident(), text()).prop_map(|(job_id, code, reason)| Event::JobRefused(JobRefused {
            job_id,
            code,
            reason
        })),
        ident().prop_map(|job_id| Event::JobAccepted(JobAccepted { job_id })),
        (ident(), option::of(ident()), any::<u64>(), any::<(u64, u64, u64)>(), option::of(any::<u64>()))
            .prop_map(|(scope, model, window_ms, (runnable, running, admitted), p50)| {
                let percentiles = Percentiles { count: admitted, p50, p95: p50 };
                Event::ScopeMetrics(ScopeMetrics {
                    scope,
                    model,
                    window_ms,
                    runnable,
                    running,
                    admitted,
                    succeeded: running,
                    failed: runnable,
                    retries: window_ms,
                    dead_letters: admitted,
                    queue_wait_ms: percentiles.clone(),
                    run_ms: percentiles,
                })
            }),
        (any::<u64>(), any::<i64>()).prop_map(|(live_workers, free_slots)| Event::ClusterMetrics(
            ClusterMetrics { live_workers, free_slots }
        )),
        (any::<u64>(), ident(), any::<u64>()).prop_map(|(epoch, holder, until_ms)| Event::SchedulerLease(
            SchedulerLease { epoch, holder, until_ms }
        )),
        (any::<u64>(), prop_oneof![Just(Topic::Assignments), Just(Topic::JobEvents)], any::<u32>())
            .prop_map(|(epoch, topic, partition)| Event::EpochFence(EpochFence { epoch, topic, partition })),
        (attempt_id(), ident())
            .prop_map(|(attempt, worker_id)| Event::AttemptStarted(AttemptStarted { attempt, worker_id })),
        (attempt_id(), ident(), any::<u32>(), option::of(text())).prop_map(
            |(attempt, worker_id, tokens, delta)| {
                Event::AttemptProgress(AttemptProgress { attempt, worker_id, tokens, delta })
            }
        ),
        (
            attempt_id(),
            ident(),
            artifact(),
            vec(artifact(), 0..3),
            any::<u64>(),
            option::of((any::<u32>(), any::<u32>())),
            option::of((ident(), option::of(ident()), ident(), option::of(text()))),
            option::of(text())
        )
            .prop_map(
                |(attempt, worker_id, artifact, inputs, duration_ms, usage, provenance, subdag)| {
                    Event::AttemptSucceeded(AttemptSucceeded {
                        attempt,
                        worker_id,
                        artifact,
                        inputs,
                        duration_ms,
                        usage: usage.map(|(prompt_tokens, completion_tokens)| Usage {
                            prompt_tokens,
                            completion_tokens,
                        }),
                        provenance: provenance.map(
                            |(cache_key, model_sha256, executor_version, cached_from)| Provenance {
                                cache_key,
                                model_sha256,
                                executor_version,
                                cached_from,
                            },
                        ),
                        subdag: subdag.map(serde_json::Value::String),
                    })
                }
            ),
        (attempt_id(), ident(), text(), any::<bool>(), proptest::option::of(revoke_reason())).prop_map(
            |(attempt, worker_id, error, retryable, revoked)| {
                Event::AttemptFailed(AttemptFailed { attempt, worker_id, error, retryable, revoked })
            }
        ),
        (ident(), job_type(), priority(), dag(), option::of(any::<u64>())).prop_map(
            |(job_id, job_type, priority, dag, deadline_ms)| {
                Event::JobAdmitted(JobAdmitted { job_id, job_type, priority, dag, deadline_ms })
            }
        ),
        (ident(), ident(), any::<u32>(), vec(ident(), 0..3), dag(), option::of(text())).prop_map(
            |(job_id, task_id, attempt, added, dag, fallback_reason)| {
                Event::JobExpanded(JobExpanded { job_id, task_id, attempt, added, dag, fallback_reason })
            }
        ),
        (ident(), ident(), text(), option::of(ident()), option::of(ident())).prop_map(
            |(job_id, code, reason, field, duplicate_of)| {
                Event::JobRejected(JobRejected { job_id, code, reason, field, duplicate_of })
            }
        ),
        (ident(), ident(), any::<u32>(), task_state(), option::of(ident()), option::of(text())).prop_map(
            |(job_id, task_id, attempt, state, worker_id, reason)| {
                Event::TaskStateChanged(TaskStateChanged {
                    job_id,
                    task_id,
                    attempt,
                    state,
                    worker_id,
                    reason,
                })
            }
        ),
        (ident(), job_state(), option::of(text()), option::of(ident())).prop_map(
            |(job_id, state, reason, failed_task)| {
                Event::JobStateChanged(JobStateChanged { job_id, state, reason, failed_task })
            }
        ),
        (ident(), option::of(ident()), any::<bool>(), any::<bool>(), option::of(ident()), text()).prop_map(
            |(job_id, task_id, placement, allowed, rule, reason)| {
                let stage = if placement { PolicyStage::Placement } else { PolicyStage::Admission };
                Event::PolicyDecision(PolicyDecision { job_id, task_id, stage, allowed, rule, reason })
            }
        ),
        (
            option::of((ident(), any::<u32>(), any::<u64>())),
            option::of(ident()),
            option::of(ident()),
            text(),
            text(),
            any::<bool>()
        )
            .prop_map(|(source, job_id, task_id, reason, payload, b64)| {
                Event::DeadLetter(DeadLetter {
                    source: source.map(|(topic, partition, offset)| SourcePosition {
                        topic,
                        partition,
                        offset,
                    }),
                    job_id,
                    task_id,
                    reason,
                    payload,
                    payload_encoding: if b64 { PayloadEncoding::Base64 } else { PayloadEncoding::Utf8 },
                })
            }),
    ]
}

pub fn envelope() -> impl Strategy<Value = Envelope> {
    (
        ident(),
        any::<u64>(),
        ident(),
        option::of("00-[0-9a-f]{32}-[0-9a-f]{16}-01"),
        option::of(any::<u64>()),
        event(),
    )
        .prop_map(|(id, ts_ms, tenant, traceparent, epoch, event)| Envelope {
            epoch,
            ..Envelope::new(id, ts_ms, tenant, event).with_traceparent(traceparent)
        })
}
