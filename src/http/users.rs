//! The current user and the administration of accounts: approvals and permissions
//! (`AprobarUsuarios`).

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::accounts::user_json;
use super::error::{ApiError, blocking};
use super::extract::Path;
use super::guard::CurrentUser;
use super::routes::{Access, Route};
use crate::store::users::{Permission, User};

/// Permissions a user gets when approved without an explicit list.
const DEFAULT_ON_APPROVAL: [Permission; 2] = [Permission::VerDashboard, Permission::VerReportes];

/// The current user (any account) and the administration of accounts (`AprobarUsuarios`).
pub fn routes() -> Vec<Route> {
    let admin = Access::Permission(Permission::AprobarUsuarios);
    vec![
        Route::get("/api/usuario/actual/", Access::User, current),
        Route::get("/api/usuarios/", admin, approved_users),
        Route::get("/api/usuarios/pendientes/", admin, pending_users),
        Route::post("/api/usuario/{id}/aprobar/", admin, approve),
        Route::get("/api/usuarios/{id}/ver-permisos/", admin, permissions),
        Route::post(
            "/api/usuarios/{id}/cambiar-permisos/",
            admin,
            change_permissions,
        ),
    ]
}

async fn current(Extension(CurrentUser(u)): Extension<CurrentUser>) -> Json<Value> {
    Json(user_json(&u))
}

async fn all_users(st: &AppState) -> Result<Vec<User>, ApiError> {
    let store = st.store.clone();
    blocking(move || store.users()).await
}

async fn approved_users(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let users: Vec<Value> = all_users(&st)
        .await?
        .iter()
        .filter(|u| u.approved)
        .map(user_json)
        .collect();
    Ok(Json(json!({ "total": users.len(), "usuarios": users })))
}

async fn pending_users(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let users: Vec<Value> = all_users(&st)
        .await?
        .iter()
        .filter(|u| !u.approved)
        .map(user_json)
        .collect();
    Ok(Json(
        json!({ "total_pendientes": users.len(), "usuarios": users }),
    ))
}

#[derive(Deserialize, Default)]
struct PermissionsBody {
    permisos: Option<Vec<String>>,
}

fn parse_permissions(names: &[String]) -> Result<u32, ApiError> {
    let mut bits = 0;
    let mut unknown = Vec::new();
    for n in names {
        match Permission::from_name(n) {
            Some(p) => bits |= p as u32,
            None => unknown.push(n.clone()),
        }
    }
    if unknown.is_empty() {
        Ok(bits)
    } else {
        let valid: Vec<_> = Permission::ALL.iter().map(|p| p.name()).collect();
        Err(ApiError::field(
            "permisos",
            format!(
                "Permisos desconocidos: {}. Válidos: {}.",
                unknown.join(", "),
                valid.join(", ")
            ),
        ))
    }
}

async fn approve(
    State(st): State<AppState>,
    Path(id): Path<u64>,
    b: Result<Option<Json<PermissionsBody>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let requested = b?.and_then(|Json(b)| b.permisos);
    let bits = match &requested {
        Some(names) => parse_permissions(names)?,
        None => DEFAULT_ON_APPROVAL.iter().fold(0, |acc, p| acc | *p as u32),
    };
    let store = st.store.clone();
    let user = blocking(move || {
        store.update_user(id, |u| {
            if !u.approved {
                u.permissions |= bits;
            }
            u.approved = true;
        })
    })
    .await?;
    Ok(Json(
        json!({ "mensaje": format!("Usuario {} aprobado.", user.username), "usuario": user_json(&user) }),
    ))
}

async fn permissions(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let user = blocking(move || store.user(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("Usuario no encontrado.".into()))?;
    Ok(Json(json!({
        "usuario_id": user.id,
        "username": user.username,
        "permisos": user.permission_names(),
        "disponibles": Permission::ALL.iter().map(|p| p.name()).collect::<Vec<_>>(),
    })))
}

async fn change_permissions(
    State(st): State<AppState>,
    Path(id): Path<u64>,
    b: Result<Json<PermissionsBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let names =
        b?.0.permisos
            .ok_or_else(|| ApiError::field("permisos", "Este campo es requerido."))?;
    let bits = parse_permissions(&names)?;
    let store = st.store.clone();
    let user = blocking(move || store.update_user(id, |u| u.permissions = bits)).await?;
    Ok(Json(
        json!({ "mensaje": "Permisos actualizados.", "usuario": user_json(&user) }),
    ))
}
