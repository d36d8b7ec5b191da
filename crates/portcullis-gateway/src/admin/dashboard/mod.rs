//! The dashboard: the page an operator opens first, served by the admin listener at
//! `/dashboard`.
//!
//! Login takes the admin token once and opens a session (an HttpOnly, SameSite=Strict cookie;
//! see [`session`]). Every asset is compiled into the binary; the Content-Security-Policy
//! allows nothing but this origin's own scripts, styles and data. State-changing requests
//! (login, logout) are POSTs whose `Origin`, when sent, must be this listener's own, and the
//! cookie is never sent cross-site: no CSRF. The data is one JSON summary
//! (`/dashboard/api/summary`) read from the recent-past window in memory, polled every few
//! seconds: it costs the request path nothing but the lock it shares with each record.

pub mod session;

use crate::respond::{self, GatewayBody};
use crate::state::GatewayState;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use portcullis_core::ApiError;
use serde_json::json;
use subtle::ConstantTimeEq;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const LOGIN: &str = include_str!("assets/login.html");
const INDEX: &str = include_str!("assets/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "uplot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/uplot.iife.min.js"),
    ),
    (
        "uplot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/uplot.min.css"),
    ),
];

/// Riskiest keys and tenants, and latest ladder actions, shown.
const DASHBOARD_THREATS: usize = 12;

/// Largest login form.
const MAX_FORM: usize = 4096;

pub async fn serve<B>(state: &GatewayState, request: Request<B>) -> Response<GatewayBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let session =
        session::from_cookies(request.headers()).filter(|id| state.dashboard_sessions.valid(id));
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let mut response = match (&method, path.as_str()) {
        (&Method::GET, "/dashboard" | "/dashboard/") => match session {
            Some(_) => html(INDEX),
            None => html(LOGIN),
        },
        (&Method::POST, "/dashboard/login") => login(state, request).await,
        (&Method::POST, "/dashboard/logout") => logout(state, &request, session),
        (&Method::GET, "/dashboard/api/summary") => match session {
            Some(_) => summary(state, request.uri().query().unwrap_or("")),
            None => respond::error(
                &ApiError::new(
                    portcullis_core::ErrorKind::Authentication,
                    "Log in to the dashboard first.",
                )
                .with_code("not_logged_in"),
            ),
        },
        (&Method::GET, p) if p.starts_with("/dashboard/assets/") => {
            asset(&p["/dashboard/assets/".len()..])
        }
        (_, p) if p == "/dashboard" || p.starts_with("/dashboard/") => {
            respond::error(&ApiError::not_found_route())
        }
        _ => respond::error(&ApiError::not_found_route()),
    };
    secure(&mut response);
    response
}

/// Headers every dashboard response carries.
fn secure(response: &mut Response<GatewayBody>) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it, browsers send `Origin: null` on the login POST.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

fn html(page: &'static str) -> Response<GatewayBody> {
    let mut r = Response::new(respond::full(page));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn asset(name: &str) -> Response<GatewayBody> {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            let mut r = Response::new(respond::full(*body));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            );
            r
        }
        None => respond::error(&ApiError::not_found_route()),
    }
}

fn redirect(to: &'static str) -> Response<GatewayBody> {
    let mut r = Response::new(respond::full(""));
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

/// A POST from another site is refused: its `Origin`, when sent, must name this host.
fn same_origin(headers: &http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o == host)
}

fn cross_site() -> Response<GatewayBody> {
    respond::error(
        &ApiError::new(
            portcullis_core::ErrorKind::Permission,
            "Requests from other sites are refused.",
        )
        .with_code("cross_site_request"),
    )
}

async fn login<B>(state: &GatewayState, request: Request<B>) -> Response<GatewayBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !same_origin(request.headers()) {
        return cross_site();
    }
    let (parts, body) = request.into_parts();
    let Ok(form) = crate::inbound::read_body(
        &parts.headers,
        body,
        MAX_FORM,
        std::time::Duration::from_secs(10),
    )
    .await
    else {
        return redirect("/dashboard?failed");
    };
    let token = form::token(&form).unwrap_or_default();
    let expected = state.admin_token.as_bytes();
    let ok = !token.is_empty() && bool::from(token.as_bytes().ct_eq(expected));
    if !ok {
        // Slows guessing; the token has 256 bits anyway.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        tracing::warn!("dashboard login refused");
        return redirect("/dashboard?failed");
    }
    let id = state.dashboard_sessions.open();
    let mut r = redirect("/dashboard");
    let secure = if state.admin_tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={}{secure}",
        session::COOKIE,
        session::LIFETIME.as_secs()
    );
    if let Ok(v) = HeaderValue::try_from(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn logout<B>(
    state: &GatewayState,
    request: &Request<B>,
    session: Option<String>,
) -> Response<GatewayBody> {
    if !same_origin(request.headers()) {
        return cross_site();
    }
    if let Some(id) = session {
        state.dashboard_sessions.close(&id);
    }
    let mut r = redirect("/dashboard");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "portcullis_dashboard=; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=0",
        ),
    );
    r
}

/// `?minutes=15&tenant=acme`: the window's summary, with the upstreams, the limiter, and
/// what the threat detector flags and did.
fn summary(state: &GatewayState, query: &str) -> Response<GatewayBody> {
    let param = |name: &str| super::reply::query_param(query, name);
    let minutes = param("minutes")
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(15)
        .clamp(1, 60);
    let step = (minutes * 60 / 180).max(1);
    let tenant = param("tenant").filter(|t| !t.is_empty() && t.len() <= 64);
    let mut body = state
        .telemetry
        .dashboard_summary(minutes, step, tenant.as_deref());
    let settings = state.settings();
    let upstreams: Vec<_> = settings
        .upstreams
        .iter()
        .zip(&settings.upstream_capacity)
        .map(|(u, capacity)| {
            json!({"name": u.name, "healthy": u.is_healthy(), "in_flight": u.in_flight(*capacity), "capacity": capacity})
        })
        .collect();
    let limits = state.limiter.status();
    body["upstreams"] = json!(upstreams);
    body["limits"] = json!({"backend": limits.backend, "healthy": limits.healthy, "outage_decisions": limits.outage_decisions});
    body["threats"] = match &state.threats {
        Some(threats) => {
            let matches = |t: &str| tenant.as_deref().is_none_or(|want| t.contains(want));
            let verdicts: Vec<_> = threats
                .verdicts(0.5)
                .into_iter()
                .filter(|v| matches(&v.tenant))
                .take(DASHBOARD_THREATS)
                .collect();
            let mut actions = threats.actions();
            actions.reverse();
            actions.truncate(DASHBOARD_THREATS);
            json!({"enabled": true, "verdicts": verdicts, "actions": actions})
        }
        None => json!({"enabled": false, "verdicts": [], "actions": []}),
    };
    respond::json_value(StatusCode::OK, &body)
}

/// The login form: `token=<admin token>`, URL-encoded.
mod form {
    pub fn token(body: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(body).ok()?;
        text.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "token")
            .and_then(|(_, v)| {
                let v = v.replace('+', " ");
                percent_encoding::percent_decode_str(&v)
                    .decode_utf8()
                    .ok()
                    .map(|v| v.trim().to_owned())
            })
    }
}
