//! The planner interface. [`TemplatePlanner`] turns a request into a DAG by its type's template;
//! [`HybridPlanner`] also plans `auto` requests, by a model at run time with the template plan as
//! the fallback. Both are pure: the gateway and the scheduler plan the same request alike.

use splai_events::{Dag, JobRequest, JobType};

use super::{Limits, PlanError};

pub trait Planner {
    /// `request` as a validated DAG, or the specific fault.
    fn plan(&self, request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError>;
}

/// Templates only: `chat`, `batch_analysis`, `embed`, `explicit`.
#[derive(Debug, Clone, Copy)]
pub struct TemplatePlanner;

impl Planner for TemplatePlanner {
    fn plan(&self, request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
        if request.job_type == JobType::Auto {
            return Err(PlanError::InvalidInput {
                field: "type".into(),
                reason: "`auto` needs the hybrid planner".into(),
            });
        }
        super::templates::plan_template(request, limits)
    }
}

/// The templates, and `auto` (see [`super::hybrid`]).
#[derive(Debug, Clone, Copy)]
pub struct HybridPlanner;

impl Planner for HybridPlanner {
    fn plan(&self, request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
        super::templates::plan_template(request, limits)
    }
}

/// Plan `request` with the planner SPLAI runs ([`HybridPlanner`]).
pub fn plan(request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
    HybridPlanner.plan(request, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hybrid_planner_plans_auto() {
        let request: JobRequest =
            serde_json::from_value(serde_json::json!({"type": "auto", "input": {"goal": "g"}})).unwrap();
        let err = TemplatePlanner.plan(&request, &Limits::default()).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("type"));
        assert!(HybridPlanner.plan(&request, &Limits::default()).is_ok());
    }
}
