//! `POST /api/usuario/<id>/restablecer-clave/` (`AprobarUsuarios`): an administrator gives an
//! account that forgot its password a new one, either chosen (`password`, `password2`, with
//! the registration rules) or generated and shown once in the answer (`password`). Every
//! session of the account ends.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::accounts::{WithTokens, user_json, with_tokens};
use super::error::{ApiError, blocking};
use super::extract::Path;
use super::guard::CurrentUser;
use super::users::{audit, given_password};
use crate::rules::password as rules;

#[derive(Deserialize, Default)]
pub(super) struct ResetBody {
    password: Option<String>,
    password2: Option<String>,
}

pub(super) async fn reset_password(
    State(st): State<AppState>,
    Extension(CurrentUser(admin)): Extension<CurrentUser>,
    Path(id): Path<u64>,
    b: Result<Option<Json<ResetBody>>, JsonRejection>,
) -> Result<WithTokens, ApiError> {
    let b = b?.map(|Json(b)| b).unwrap_or_default();
    let store = st.store.clone();
    let user = blocking(move || store.user(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("Usuario no encontrado.".into()))?;
    let chosen = given_password(b.password, b.password2, &user)?;
    let generated = chosen.is_none();
    let password = chosen.unwrap_or_else(rules::generated);
    let hash = st.auth.hasher.hash(password.clone()).await?;
    let store = st.store.clone();
    let user = blocking(move || store.set_password(id, hash)).await?;
    audit(&admin, "reset password", &user);
    let mut body = json!({
        "mensaje": format!(
            "Contraseña de {} restablecida; sus sesiones se cerraron.",
            user.username
        ),
        "usuario": user_json(&user),
        "generada": generated,
    });
    if generated {
        body["password"] = Value::from(password);
    }
    // A generated password is as secret as a token: never cached either.
    Ok(with_tokens(body))
}
