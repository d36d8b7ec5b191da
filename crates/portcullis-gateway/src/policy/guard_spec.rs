//! The guard settings that apply to one request: `[guard]`, then the plan's, the tenant's and
//! the model's, each overriding the one before. Computed once; every guard step and the output
//! filters read the result.

use crate::catalog::Route;
use crate::state::Settings;
use portcullis_config::GuardSpec;
use portcullis_core::Principal;

/// The guard settings that apply to this request: global, then plan, tenant and model.
pub fn resolve(settings: &Settings, principal: &Principal, route: &Route) -> GuardSpec {
    let plan = match principal {
        Principal::Key(k) => k.plan.as_str(),
        Principal::Anonymous => "default",
    };
    let plan_spec = settings
        .plans
        .plan(plan)
        .map(|p| p.guard.clone())
        .unwrap_or_default();
    let tenant_spec = match principal {
        Principal::Key(k) => settings
            .tenant_guard
            .get(&k.tenant)
            .cloned()
            .unwrap_or_default(),
        Principal::Anonymous => GuardSpec::default(),
    };
    settings
        .guard
        .spec()
        .overridden_by(&plan_spec)
        .overridden_by(&tenant_spec)
        .overridden_by(&route.guard)
}
