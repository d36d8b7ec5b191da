//! Authorization: may this principal do this, with this model, on this listener?
//!
//! Roles come from `[roles.NAME]` in the configuration, with two built in: `inference`
//! (invoke every endpoint, list models, exchange tokens) and `admin` (everything). Checks, in
//! order: the internal listener serves internal tenants only; the role grants the endpoint's
//! permission; the key may use the model; test keys reach test models and live keys live ones.

use crate::catalog::Route;
use crate::pipeline::RequestContext;
use portcullis_config::ModelEnvironment;
use portcullis_core::{
    ApiError, Audience, Endpoint, Environment, ErrorKind, KeyPrincipal, ListenerKind, Principal,
};
use portcullis_identity::Credential;
use std::collections::HashMap;

pub struct Roles {
    permissions: HashMap<String, Vec<String>>,
}

impl Roles {
    pub fn new(config: &portcullis_config::Config) -> Roles {
        let mut permissions: HashMap<String, Vec<String>> = HashMap::new();
        permissions.insert(
            "inference".into(),
            [
                "chat:invoke",
                "completions:invoke",
                "embeddings:invoke",
                "responses:invoke",
                "models:list",
                "tokens:exchange",
            ]
            .map(String::from)
            .to_vec(),
        );
        permissions.insert("admin".into(), vec!["*".into()]);
        for (name, role) in &config.roles {
            permissions.insert(name.clone(), role.permissions.clone());
        }
        Roles { permissions }
    }

    /// The permissions `roles` grant together, sorted and without repeats.
    pub fn permissions_of(&self, roles: &[String]) -> Vec<String> {
        let mut all: Vec<String> = roles
            .iter()
            .filter_map(|r| self.permissions.get(r))
            .flatten()
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Every role with its permissions, sorted by name.
    pub fn list(&self) -> Vec<(&str, &[String])> {
        let mut roles: Vec<_> = self
            .permissions
            .iter()
            .map(|(name, perms)| (name.as_str(), perms.as_slice()))
            .collect();
        roles.sort_by_key(|(name, _)| *name);
        roles
    }

    pub fn exists(&self, role: &str) -> bool {
        self.permissions.contains_key(role)
    }

    /// Whether any of `roles` grants `permission` (`*` grants all, `admin:*` every admin one).
    pub fn grants(&self, roles: &[String], permission: &str) -> bool {
        roles
            .iter()
            .filter_map(|r| self.permissions.get(r))
            .flatten()
            .any(|p| {
                p == "*" || p == permission || (p == "admin:*" && permission.starts_with("admin:"))
            })
    }
}

/// The permission an endpoint needs. Exhaustive: a new endpoint names its permission here.
pub fn endpoint_permission(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "chat:invoke",
        Endpoint::Completions => "completions:invoke",
        Endpoint::Embeddings => "embeddings:invoke",
        Endpoint::Responses => "responses:invoke",
        Endpoint::Models => "models:list",
    }
}

/// The one permission check of every listener's operations: the internal listener serves
/// internal tenants only, and the principal's roles must grant `needed`.
pub fn permission(
    cx: &RequestContext,
    principal: &Principal,
    needed: &str,
) -> Result<(), ApiError> {
    let Principal::Key(key) = principal else {
        return Ok(()); // anonymous: dev mode on loopback only
    };
    if cx.listener == ListenerKind::Internal && key.audience != Audience::Internal {
        return Err(ApiError::new(
            ErrorKind::Permission,
            "This listener serves internal callers only.",
        )
        .with_code("audience_not_allowed"));
    }
    if !cx.settings.roles.grants(&key.roles, needed) {
        return Err(ApiError::new(
            ErrorKind::Permission,
            format!("This key's roles do not grant `{needed}`."),
        )
        .with_code("permission_denied"));
    }
    Ok(())
}

/// May the principal call this endpoint on this listener.
pub fn endpoint(
    cx: &RequestContext,
    principal: &Principal,
    endpoint: Endpoint,
) -> Result<(), ApiError> {
    permission(cx, principal, endpoint_permission(endpoint))
}

/// May the principal exchange its credential for a token: only keys can (a token cannot mint
/// tokens, so a stolen one cannot be stretched past its expiry), with `tokens:exchange`.
pub fn token_exchange<'p>(
    cx: &RequestContext,
    principal: &'p Principal,
    credential: Option<Credential>,
) -> Result<&'p KeyPrincipal, ApiError> {
    let (Principal::Key(key), Some(Credential::Key(_))) = (principal, credential) else {
        return Err(ApiError::new(
            ErrorKind::Permission,
            "Tokens are issued for API keys only: authenticate with a key, not a token.",
        )
        .with_code("token_exchange_requires_key"));
    };
    permission(cx, principal, "tokens:exchange")?;
    Ok(key)
}

/// Whether the principal may use `route`: the key's model list and its environment.
pub fn model(principal: &Principal, route: &Route) -> Result<(), ApiError> {
    let Principal::Key(key) = principal else {
        return Ok(());
    };
    if let Some(models) = &key.models {
        if !models.iter().any(|m| m == &route.name) {
            return Err(ApiError::new(
                ErrorKind::Permission,
                format!("This key may not use the model `{}`.", route.name),
            )
            .with_param("model")
            .with_code("model_not_allowed"));
        }
    }
    let model_env = match route.environment {
        ModelEnvironment::Live => Environment::Live,
        ModelEnvironment::Test => Environment::Test,
    };
    if model_env != key.environment {
        return Err(ApiError::new(
            ErrorKind::Permission,
            format!(
                "{} keys can only use {} models; `{}` is a {} model.",
                key.environment.as_str(),
                key.environment.as_str(),
                route.name,
                model_env.as_str()
            ),
        )
        .with_param("model")
        .with_code("environment_mismatch"));
    }
    Ok(())
}
