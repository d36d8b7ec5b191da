//! The model catalog: which names callers may use on which listener, and where they go.

use portcullis_config::{Config, ModelEnvironment, Visibility};
use portcullis_core::ListenerKind;
use serde_json::json;
use std::collections::HashMap;

/// One model as the request path sees it.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Index into the upstream table.
    pub upstream: usize,
    /// The model name sent upstream, as a JSON value ready to splice into the body.
    pub upstream_model: serde_json::Value,
    pub visibility: Visibility,
    pub environment: ModelEnvironment,
    /// The vocabulary prompts are counted in.
    pub encoding: portcullis_openai::Encoding,
    pub price: portcullis_limits::Price,
    /// Input guard settings of this model.
    pub guard: portcullis_config::GuardSpec,
    /// Its prompts and completions are never kept.
    pub sensitive: bool,
}

impl Route {
    /// Internal models exist only on the internal listener; elsewhere they are not found.
    pub fn visible_on(&self, listener: ListenerKind) -> bool {
        match self.visibility {
            Visibility::Public => listener != ListenerKind::Admin,
            Visibility::Internal => listener == ListenerKind::Internal,
        }
    }
}

#[derive(Debug, Default)]
pub struct Catalog {
    routes: HashMap<String, Route>,
    order: Vec<String>,
}

impl Catalog {
    /// Builds the catalog; `upstream_index` maps upstream names to their table positions
    /// (the configuration was validated, so every reference resolves).
    pub fn new(config: &Config, upstream_index: &HashMap<String, usize>) -> Catalog {
        let mut catalog = Catalog::default();
        for model in &config.models {
            let Some(&upstream) = upstream_index.get(&model.upstream) else {
                continue;
            };
            catalog.order.push(model.name.clone());
            catalog.routes.insert(
                model.name.clone(),
                Route {
                    name: model.name.clone(),
                    upstream,
                    upstream_model: json!(model.upstream_model()),
                    encoding: model
                        .tokenizer
                        .as_deref()
                        .and_then(portcullis_openai::Encoding::from_name)
                        .unwrap_or(portcullis_openai::Encoding::O200kBase),
                    guard: model.guard.clone(),
                    sensitive: model.sensitive,
                    price: portcullis_limits::Price::per_million(
                        model.input_price,
                        model.output_price,
                    ),
                    visibility: model.visibility,
                    environment: model
                        .environment
                        .unwrap_or(config.upstreams[upstream].environment),
                },
            );
        }
        catalog
    }

    /// Whether `model` is configured (on any listener).
    pub fn contains(&self, model: &str) -> bool {
        self.routes.contains_key(model)
    }

    /// The route for `model` if it is visible on `listener`.
    pub fn resolve(&self, model: &str, listener: ListenerKind) -> Option<&Route> {
        self.routes.get(model).filter(|r| r.visible_on(listener))
    }

    /// `GET /v1/models`: only what the caller may use on this listener.
    pub fn list(
        &self,
        listener: ListenerKind,
        allowed: impl Fn(&Route) -> bool,
    ) -> serde_json::Value {
        let data: Vec<_> = self
            .order
            .iter()
            .filter_map(|name| self.routes.get(name))
            .filter(|r| r.visible_on(listener) && allowed(r))
            .map(|r| json!({"id": r.name, "object": "model", "created": 0, "owned_by": "portcullis"}))
            .collect();
        json!({"object": "list", "data": data})
    }
}

impl Catalog {
    /// The tokenizers the configured models use, to load before the first request.
    pub fn encodings(&self) -> Vec<portcullis_openai::Encoding> {
        let mut encodings: Vec<_> = self.routes.values().map(|r| r.encoding).collect();
        encodings.sort_by_key(|e| e.name());
        encodings.dedup();
        encodings
    }
}
