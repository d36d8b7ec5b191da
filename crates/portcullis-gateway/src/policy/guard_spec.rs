//! The guard settings that apply to one request: `[guard]`, then the plan's, the tenant's and
//! the model's, each overriding the one before. Computed once; every guard step and the output
//! filters read the result.

use crate::catalog::Route;
use crate::state::Settings;
use portcullis_config::GuardSpec;
use portcullis_core::Principal;

/// The keys to watermark this request's answer with, when the watermark is on for it. The
/// `[guard]` default never reaches internal keys: for them only a plan, tenant or model that
/// turns the watermark on does.
pub fn watermark_keys(
    settings: &Settings,
    principal: &Principal,
    route: &Route,
    spec: &GuardSpec,
) -> Option<portcullis_watermark::MarkKeys> {
    use portcullis_config::WatermarkPolicy::On;
    let Principal::Key(key) = principal else {
        return None;
    };
    let on = if key.audience == portcullis_core::Audience::Internal {
        let plan = settings
            .plans
            .plan(&key.plan)
            .and_then(|p| p.guard.watermark);
        let tenant = settings
            .tenant_guard
            .get(&key.tenant)
            .and_then(|g| g.watermark);
        route.guard.watermark.or(tenant).or(plan) == Some(On)
    } else {
        spec.watermark == Some(On)
    };
    let ring = settings.watermark.as_ref().filter(|_| on)?;
    Some(portcullis_watermark::MarkKeys::new(
        ring.current(),
        &key.tenant,
    ))
}

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
