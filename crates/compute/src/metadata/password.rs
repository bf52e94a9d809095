//! The server's password, as Nova's metadata `password` handler keeps it:
//! the guest posts it (encrypted with the server's key by the guest agent)
//! once; a second post is a 409 until an admin clears it through
//! `os-server-password`. It is kept in the server's system metadata.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use stratus_db::Db;

use super::{MetadataError, TEXT};
use crate::error::Result;
use crate::store::instances::{self, Change, Expect, Instance};

/// Nova's limit: four chunks of 255 characters in system metadata.
pub const MAX_SIZE: usize = 4 * 255;

const KEY: &str = "password";

/// The password the guest posted ('' when none).
pub fn of(inst: &Instance) -> String {
    let sys: Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
    sys.get(KEY).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// What a post of a password came to.
#[derive(Debug, PartialEq)]
pub enum Set {
    Done,
    /// One is set already.
    Conflict,
    /// The server is gone.
    Gone,
}

/// Change the server's password with `f` (given the current one; `None`:
/// leave it) as a compare-and-swap of its system metadata, retried when
/// another change of it came first.
async fn change(db: &Db, uuid: &str, f: impl Fn(&str) -> Option<String>) -> Result<Set> {
    for _ in 0..50 {
        let Some(inst) = instances::get_live(db, uuid).await? else { return Ok(Set::Gone) };
        let Some(new) = f(&of(&inst)) else { return Ok(Set::Conflict) };
        let mut sys: Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
        if new.is_empty() {
            sys.remove(KEY);
        } else {
            sys.insert(KEY.into(), Value::String(new));
        }
        let swapped = instances::update(
            db,
            uuid,
            &Expect::live().system_metadata(&inst.system_metadata),
            Change { system_metadata: Some(Value::Object(sys).to_string()), ..Default::default() },
        )
        .await?;
        if swapped {
            return Ok(Set::Done);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Err(crate::error::ComputeError::Internal(anyhow::anyhow!("the system metadata of server {uuid} kept changing")))
}

/// Set the password unless one is set.
pub async fn set_once(db: &Db, uuid: &str, password: &str) -> Result<Set> {
    let password = password.to_string();
    change(db, uuid, move |current| current.is_empty().then(|| password.clone())).await
}

/// Forget the password (`os-server-password` clear): the guest may post again.
pub async fn clear(db: &Db, uuid: &str) -> Result<()> {
    change(db, uuid, |_| Some(String::new())).await.map(|_| ())
}

fn conflict() -> MetadataError {
    MetadataError::new(StatusCode::CONFLICT, "There was a conflict when trying to complete your request.")
}

/// `openstack/<version>/password`: GET reads, POST sets once.
pub async fn handle(
    db: &Db,
    inst: &Instance,
    method: &Method,
    body: &[u8],
) -> std::result::Result<Response, MetadataError> {
    let ok = |body: String| (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT))], body);
    match *method {
        Method::GET | Method::HEAD => Ok(ok(of(inst)).into_response()),
        Method::POST => {
            if !of(inst).is_empty() {
                return Err(conflict());
            }
            if body.len() > MAX_SIZE {
                return Err(MetadataError::bad_request("Request is too large."));
            }
            let Ok(password) = std::str::from_utf8(body) else {
                return Err(MetadataError::bad_request("The password is not text."));
            };
            match set_once(db, &inst.uuid, password).await? {
                Set::Done => Ok(ok(String::new()).into_response()),
                Set::Conflict => Err(conflict()),
                Set::Gone => Err(MetadataError::bad_request(format!("Instance {} could not be found.", inst.uuid))),
            }
        }
        _ => Err(MetadataError::bad_request("GET and POST only are supported.")),
    }
}
