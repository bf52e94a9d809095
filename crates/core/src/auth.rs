//! Who is calling: the token middleware, the `Auth` extractor and the policy
//! check every handler makes. Identity validates tokens in process; other
//! services plug in a validator that asks identity (with a short cache).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::access_rules::{AccessRule, RequestPath, ServiceName};
use crate::extract::style_of;
use crate::fault::ApiError;

/// A validated token, as every service sees its caller.
#[derive(Clone)]
pub struct AuthContext {
    pub token: String,
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub system_scope: bool,
    /// (id, name) of the effective roles on the scope.
    pub roles: Vec<(String, String)>,
    pub is_admin_project: bool,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub audit_ids: Vec<String>,
    pub methods: Vec<String>,
    pub application_credential_id: Option<String>,
    /// Role names of a valid `X-Service-Token`, if one came with the request.
    pub service_roles: Vec<String>,
    /// `creds()` computed once per context (contexts are cached per token).
    pub creds_memo: std::sync::OnceLock<Value>,
}

impl std::fmt::Debug for AuthContext {
    // never print the token itself
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthContext")
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .field("domain_id", &self.domain_id)
            .field("system_scope", &self.system_scope)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|(_, n)| n.eq_ignore_ascii_case(name))
    }

    /// The credentials object policy rules are evaluated against (oslo.policy's `creds`).
    pub fn creds(&self) -> &Value {
        self.creds_memo.get_or_init(|| self.build_creds())
    }

    fn build_creds(&self) -> Value {
        let roles: Vec<&str> = self.roles.iter().map(|(_, n)| n.as_str()).collect();
        json!({
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": if self.system_scope { Some("all") } else { None },
            "roles": roles,
            "service_roles": self.service_roles,
            "is_admin_project": self.is_admin_project,
            "token": {
                "user_id": self.user_id,
                "is_admin_project": self.is_admin_project,
                "project": {"id": self.project_id, "domain": {"id": self.project_domain_id}},
                "domain": {"id": self.domain_id},
                "user": {"id": self.user_id, "domain": {"id": self.user_domain_id}},
            },
        })
    }
}

/// Why a presented token was refused.
#[derive(Debug, Clone)]
pub enum TokenError {
    /// Not a token, expired, revoked, or its user/scope no longer valid.
    Invalid(String),
    /// The validator could not decide (e.g. identity unreachable).
    Unavailable(String),
}

/// The access rules of the application credential a token came from
/// (`None`: the token may call anything its roles allow).
pub type AccessRules = Option<Arc<Vec<AccessRule>>>;

/// Something that turns a token string into an `AuthContext`.
pub trait TokenValidator: Send + Sync + 'static {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<AuthContext>, TokenError>>;

    /// The context and the access rules the request must match (validators
    /// that know of none keep this default).
    fn validate_with_rules<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(Arc<AuthContext>, AccessRules), TokenError>> {
        Box::pin(async move { Ok((self.validate(token).await?, None)) })
    }
}

/// Does the request pass the token's access rules? (A request with a valid
/// service token is part of a chain between services and is not checked,
/// as in keystonemiddleware.)
fn passes_access_rules(req: &Request, rules: &AccessRules) -> bool {
    let Some(rules) = rules else {
        return true;
    };
    let Some(ServiceName(name)) = req.extensions().get::<ServiceName>().copied() else {
        // not behind `http::service`: no service type to check against
        return false;
    };
    let path = match req.extensions().get::<RequestPath>() {
        Some(p) => p.0.clone(),
        None => req.uri().path().to_string(),
    };
    crate::access_rules::allows(rules, name, req.method().as_str(), &path)
}

/// What the middleware found in `X-Auth-Token`.
#[derive(Clone, Debug)]
pub enum AuthState {
    Missing,
    Invalid(String),
    Valid(Arc<AuthContext>),
}

/// Middleware: validate `X-Auth-Token` (and `X-Service-Token`) and record the result.
pub async fn middleware(validator: Arc<dyn TokenValidator>, mut req: Request, next: Next) -> Response {
    let token = req.headers().get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let state = match token {
        None => AuthState::Missing,
        Some(t) if t.is_empty() => AuthState::Missing,
        Some(t) => match validator.validate_with_rules(&t).await {
            Ok((ctx, rules)) => {
                let service = req.headers().get("x-service-token").and_then(|v| v.to_str().ok()).map(str::to_string);
                match service {
                    Some(s) if !s.is_empty() => match validator.validate(&s).await {
                        Ok(sctx) => {
                            let mut c = (*ctx).clone();
                            c.service_roles = sctx.roles.iter().map(|(_, n)| n.clone()).collect();
                            c.creds_memo = std::sync::OnceLock::new();
                            AuthState::Valid(Arc::new(c))
                        }
                        Err(_) => AuthState::Invalid("The service token is not valid.".into()),
                    },
                    _ if !passes_access_rules(&req, &rules) => {
                        AuthState::Invalid("The request is not allowed by the token's access rules.".into())
                    }
                    _ => AuthState::Valid(ctx),
                }
            }
            Err(TokenError::Invalid(m)) => AuthState::Invalid(m),
            Err(TokenError::Unavailable(m)) => {
                tracing::warn!(error = %m, "token validation unavailable");
                AuthState::Invalid("Token validation is unavailable.".into())
            }
        },
    };
    req.extensions_mut().insert(state);
    next.run(req).await
}

/// Extractor: the caller, or a 401 in the service's style.
pub struct Auth(pub Arc<AuthContext>);

pub fn unauthorized(parts_ext: &axum::http::Extensions, message: &str) -> ApiError {
    ApiError::new(style_of(parts_ext), StatusCode::UNAUTHORIZED, message)
        .with_header("www-authenticate", "Keystone uri=\"/v3\"")
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<AuthState>() {
            Some(AuthState::Valid(ctx)) => Ok(Auth(ctx.clone())),
            Some(AuthState::Invalid(_)) => {
                Err(unauthorized(&parts.extensions, "The request you have made requires authentication."))
            }
            _ => Err(unauthorized(&parts.extensions, "The request you have made requires authentication.")),
        }
    }
}

/// The policy engine as services use it: one check per handler.
#[derive(Clone)]
pub struct Policy {
    pub enforcer: Arc<stratus_policy::Enforcer>,
    pub style: crate::fault::FaultStyle,
}

impl Policy {
    pub fn new(enforcer: stratus_policy::Enforcer, style: crate::fault::FaultStyle) -> Self {
        Policy { enforcer: Arc::new(enforcer), style }
    }

    pub fn allowed(&self, ctx: &AuthContext, rule: &str, target: &Value) -> bool {
        self.enforcer.enforce(rule, target, ctx.creds())
    }

    /// 403 unless `rule` allows `ctx` on `target`.
    pub fn enforce(&self, ctx: &AuthContext, rule: &str, target: &Value) -> Result<(), ApiError> {
        if self.allowed(ctx, rule, target) {
            Ok(())
        } else {
            Err(ApiError::new(
                self.style,
                StatusCode::FORBIDDEN,
                format!("You are not authorized to perform the requested action: {rule}."),
            ))
        }
    }
}

/// Build the auth middleware layer for a validator.
pub fn layer(
    validator: Arc<dyn TokenValidator>,
) -> axum::middleware::FromFnLayer<
    impl Fn(Request, Next) -> BoxFuture<'static, Response> + Clone + Send + Sync + 'static,
    (),
    (Request,),
> {
    axum::middleware::from_fn(move |req: Request, next: Next| {
        let v = validator.clone();
        Box::pin(middleware(v, req, next)) as BoxFuture<'static, Response>
    })
}
