//! Why a request was not admitted. Each variant is one fault, with a stable `code()` and the request
//! field at fault, so the gateway can answer 400 naming the field and the scheduler can emit
//! `JobRejected` with the same reason.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("duplicate task id `{task}`")]
    DuplicateTaskId { task: String },
    #[error(
        "task `{task}` has unknown kind `{kind}` (expected llm_inference, embedding, tool_execution or aggregation)"
    )]
    UnknownKind { task: String, kind: String },
    #[error("the DAG has a cycle: {}", .path.join(" -> "))]
    Cycle { path: Vec<String> },
    #[error("task `{task}` names parent `{parent}`, which is not in the DAG")]
    MissingParent { task: String, parent: String },
    #[error(
        "task `{task}` input `{input}` reads the output of `{source_task}`, which is not one of its parents"
    )]
    MissingOutput { task: String, input: String, source_task: String },
    #[error("the DAG has {count} tasks; the limit is {max}")]
    TooManyTasks { count: usize, max: usize },
    #[error("the input is {bytes} bytes; the limit is {max}")]
    InputTooLarge { bytes: usize, max: usize },
    #[error("invalid task id `{task}`: {reason}")]
    InvalidTaskId { task: String, reason: &'static str },
    #[error("the DAG has no tasks")]
    EmptyDag,
    #[error("`{field}` is invalid: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("job type `explicit` needs a `dag`")]
    MissingDag,
    #[error("a `dag` is only accepted with job type `explicit`")]
    UnexpectedDag,
}

impl PlanError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::DuplicateTaskId { .. } => "duplicate_task_id",
            PlanError::UnknownKind { .. } => "unknown_kind",
            PlanError::Cycle { .. } => "dag_cycle",
            PlanError::MissingParent { .. } => "missing_parent",
            PlanError::MissingOutput { .. } => "missing_output",
            PlanError::TooManyTasks { .. } => "too_many_tasks",
            PlanError::InputTooLarge { .. } => "input_too_large",
            PlanError::InvalidTaskId { .. } => "invalid_task_id",
            PlanError::EmptyDag => "empty_dag",
            PlanError::InvalidInput { .. } => "invalid_input",
            PlanError::MissingDag => "missing_dag",
            PlanError::UnexpectedDag => "unexpected_dag",
        }
    }

    /// The request field at fault, as a JSON path.
    pub fn field(&self) -> Option<String> {
        Some(match self {
            PlanError::DuplicateTaskId { .. }
            | PlanError::Cycle { .. }
            | PlanError::TooManyTasks { .. }
            | PlanError::EmptyDag => "dag.tasks".into(),
            PlanError::UnknownKind { task, .. } => format!("dag.tasks[{task}].kind"),
            PlanError::MissingParent { task, .. } => format!("dag.tasks[{task}].parents"),
            PlanError::MissingOutput { task, input, .. } => format!("dag.tasks[{task}].inputs.{input}"),
            PlanError::InvalidTaskId { task, .. } => format!("dag.tasks[{task}].id"),
            PlanError::InputTooLarge { .. } => "input".into(),
            PlanError::InvalidInput { field, .. } => field.clone(),
            PlanError::MissingDag | PlanError::UnexpectedDag => "dag".into(),
        })
    }
}
