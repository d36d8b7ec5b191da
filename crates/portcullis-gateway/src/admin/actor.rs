//! Who is calling the admin API, and what they may do there.
//!
//! The caller is the bootstrap admin token (compared in constant time), or a credential the
//! one authenticator accepts (a key, a gateway token, an external JWT; with its network,
//! origin and browser rules) whose roles grant the route's permission. Two rules keep
//! delegated administration safe:
//! - **least privilege**: a principal never grants what it lacks. A key (or a rotation's
//!   successor) may carry only roles whose every permission the caller holds, and only models
//!   the caller may use;
//! - **tenant scope**: admin keys of an `internal` tenant (the operators') are global; any other
//!   admin key manages its own tenant only: its keys, its usage. Other tenants' keys and
//!   tenants are not found, and operator-wide actions (tenants, signing keys, the audit log,
//!   risk factors) are refused.

use super::reply::not_found;
use crate::state::GatewayState;
use http::Request;
use portcullis_core::{ApiError, Audience, ErrorKind, KeyPrincipal, ListenerKind, Principal};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub(super) enum Actor {
    Bootstrap,
    Key(Arc<KeyPrincipal>),
}

impl Actor {
    /// The bootstrap token, or an authenticated key; anything else is 401.
    pub(super) async fn authenticate<B>(
        state: &GatewayState,
        request: &Request<B>,
    ) -> Result<Actor, ApiError> {
        let presented = crate::policy::authn::bearer(request.headers()).unwrap_or("");
        let expected = state.admin_token.as_bytes();
        if !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(expected)) {
            return Ok(Actor::Bootstrap);
        }
        let refused = || {
            ApiError::new(
                ErrorKind::Authentication,
                "The admin API needs the admin token, or a key whose roles grant admin \
                 permissions, as `Authorization: Bearer <token>`.",
            )
            .with_code("invalid_admin_token")
        };
        if presented.is_empty() {
            return Err(refused());
        }
        let mut cx = crate::pipeline::RequestContext::new(
            portcullis_core::RequestId::generate(),
            ListenerKind::Admin,
            state.settings(),
            Default::default(),
        );
        match crate::policy::authn::identify(state, &mut cx, request).await {
            Ok(identified) => match identified.principal {
                Principal::Key(key) => Ok(Actor::Key(key)),
                Principal::Anonymous => Err(refused()),
            },
            // A valid credential used from where it may not be keeps its own reason.
            Err(e) if e.kind == ErrorKind::Permission => Err(e),
            Err(_) => Err(refused()),
        }
    }

    /// How the audit log names the actor.
    pub(super) fn name(&self) -> String {
        match self {
            Actor::Bootstrap => "admin".into(),
            Actor::Key(k) => format!("key:{}", k.key_id),
        }
    }

    /// The one tenant a tenant-scoped actor manages; `None` for global actors.
    pub(super) fn scope(&self) -> Option<&str> {
        match self {
            Actor::Key(k) if k.audience != Audience::Internal => Some(&k.tenant),
            _ => None,
        }
    }

    pub(super) fn require(&self, state: &GatewayState, permission: &str) -> Result<(), ApiError> {
        match self {
            Actor::Bootstrap => Ok(()),
            Actor::Key(k) if state.settings().roles.grants(&k.roles, permission) => Ok(()),
            Actor::Key(_) => Err(ApiError::new(
                ErrorKind::Permission,
                format!("This credential's roles do not grant `{permission}`."),
            )
            .with_code("permission_denied")),
        }
    }

    /// Operator-wide actions: only the bootstrap token and keys of internal tenants.
    pub(super) fn require_global(&self) -> Result<(), ApiError> {
        match self.scope() {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                ErrorKind::Permission,
                "This action is for operators: admin keys of other tenants manage their own \
                 tenant only.",
            )
            .with_code("cross_tenant_denied")),
        }
    }

    /// A new resource in `tenant`: refused outside the actor's scope.
    pub(super) fn may_create_in(&self, tenant: &str) -> Result<(), ApiError> {
        match self.scope() {
            Some(own) if own != tenant => Err(ApiError::new(
                ErrorKind::Permission,
                "This key manages its own tenant only.",
            )
            .with_param("tenant")
            .with_code("cross_tenant_denied")),
            _ => Ok(()),
        }
    }

    /// An existing resource of `tenant`: outside the actor's scope it does not exist.
    pub(super) fn may_see(&self, tenant: &str, what: &str) -> Result<(), ApiError> {
        match self.scope() {
            Some(own) if own != tenant => Err(not_found(what)),
            _ => Ok(()),
        }
    }

    /// Least privilege: every permission of `roles` must be the actor's own, and `models`
    /// within the actor's models.
    pub(super) fn may_grant(
        &self,
        state: &GatewayState,
        roles: &[String],
        models: &Option<Vec<String>>,
    ) -> Result<(), ApiError> {
        let Actor::Key(actor) = self else {
            return Ok(());
        };
        let settings = state.settings();
        for permission in settings.roles.permissions_of(roles) {
            if !settings.roles.grants(&actor.roles, &permission) {
                return Err(ApiError::new(
                    ErrorKind::Permission,
                    format!(
                        "A key cannot grant what its creator lacks: `{permission}` is not among \
                         this credential's permissions."
                    ),
                )
                .with_param("roles")
                .with_code("privilege_escalation_denied"));
            }
        }
        if let Some(allowed) = &actor.models {
            let within = models
                .as_ref()
                .is_some_and(|m| m.iter().all(|x| allowed.contains(x)));
            if !within {
                return Err(ApiError::new(
                    ErrorKind::Permission,
                    "A key cannot reach models its creator may not use: list `models` within \
                     this credential's models.",
                )
                .with_param("models")
                .with_code("privilege_escalation_denied"));
            }
        }
        Ok(())
    }
}
