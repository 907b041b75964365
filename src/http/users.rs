//! The current user and the administration of accounts (`AprobarUsuarios`): lists, approval
//! and permissions, rejecting a registration, disabling, enabling and deleting an account,
//! resetting a forgotten password, and the login lockouts. The store keeps somebody active
//! able to approve users whatever is asked; an administrator cannot disable or delete
//! themselves here (the `user` command can, with the service stopped).

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::accounts::{FieldErrors, check_new_password, user_json};
use super::error::{ApiError, blocking};
use super::extract::Path;
use super::guard::CurrentUser;
use super::routes::{Access, Route};
use crate::logsafe::Clean;
use crate::rules::account;
use crate::store::users::{Permission, User};

/// Most names accepted in a permission list (there are five permissions).
const MAX_PERMISSION_NAMES: usize = 32;

/// The current user (any account) and the administration of accounts (`AprobarUsuarios`).
pub fn routes() -> Vec<Route> {
    let admin = Access::Permission(Permission::AprobarUsuarios);
    vec![
        Route::get("/api/usuario/actual/", Access::User, current),
        Route::get("/api/usuarios/", admin, approved_users),
        Route::get("/api/usuarios/pendientes/", admin, pending_users),
        Route::get("/api/usuarios/bloqueos/", admin, super::lockouts::list),
        Route::post("/api/usuario/{id}/aprobar/", admin, approve),
        Route::post("/api/usuario/{id}/rechazar/", admin, reject),
        Route::post("/api/usuario/{id}/deshabilitar/", admin, disable),
        Route::post("/api/usuario/{id}/habilitar/", admin, enable),
        Route::post("/api/usuario/{id}/eliminar/", admin, delete),
        Route::delete("/api/usuario/{id}/", admin, delete),
        Route::post(
            "/api/usuario/{id}/restablecer-clave/",
            admin,
            super::reset::reset_password,
        ),
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
    let on_approval: Vec<_> = account::DEFAULT_PERMISSIONS
        .iter()
        .map(|p| p.name())
        .collect();
    Ok(Json(json!({
        "total_pendientes": users.len(),
        "usuarios": users,
        "permisos_al_aprobar": on_approval,
    })))
}

#[derive(Deserialize, Default)]
struct PermissionsBody {
    permisos: Option<Vec<String>>,
}

fn parse_permissions(names: &[String]) -> Result<u32, ApiError> {
    if names.len() > MAX_PERMISSION_NAMES {
        return Err(ApiError::field(
            "permisos",
            format!("Como máximo {MAX_PERMISSION_NAMES} nombres."),
        ));
    }
    let mut bits = 0;
    let mut unknown = Vec::new();
    for n in names {
        match Permission::from_name(n) {
            Some(p) => bits |= p as u32,
            None => unknown.push(n.chars().take(64).collect::<String>()),
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

/// Logs an administrator's change to an account.
pub(super) fn audit(admin: &User, action: &'static str, target: &User) {
    tracing::info!(
        by = %Clean(&admin.username),
        action,
        user = %Clean(&target.username),
        id = target.id,
        "account changed"
    );
}

async fn approve(
    State(st): State<AppState>,
    Extension(CurrentUser(admin)): Extension<CurrentUser>,
    Path(id): Path<u64>,
    b: Result<Option<Json<PermissionsBody>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let requested = b?.and_then(|Json(b)| b.permisos);
    let bits = match &requested {
        Some(names) => parse_permissions(names)?,
        None => account::default_permission_bits(),
    };
    let store = st.store.clone();
    let user = blocking(move || store.approve_user(id, bits)).await?;
    audit(&admin, "approve", &user);
    Ok(Json(
        json!({ "mensaje": format!("Usuario {} aprobado.", user.username), "usuario": user_json(&user) }),
    ))
}

async fn reject(
    State(st): State<AppState>,
    Extension(CurrentUser(admin)): Extension<CurrentUser>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let user = blocking(move || store.reject_user(id)).await?;
    audit(&admin, "reject", &user);
    Ok(Json(json!({
        "mensaje": format!("Registro de {} rechazado.", user.username),
        "usuario": user_json(&user),
    })))
}

/// Refuses an administrator acting on their own account in a way that would lock them out.
fn not_self(admin: &User, id: u64, what: &str) -> Result<(), ApiError> {
    if admin.id == id {
        return Err(ApiError::BadRequest(format!(
            "No puedes {what} tu propia cuenta: pide a otro administrador que lo haga."
        )));
    }
    Ok(())
}

async fn disable(
    State(st): State<AppState>,
    Extension(CurrentUser(admin)): Extension<CurrentUser>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    not_self(&admin, id, "deshabilitar")?;
    let store = st.store.clone();
    let user = blocking(move || store.set_disabled(id, true)).await?;
    audit(&admin, "disable", &user);
    Ok(Json(json!({
        "mensaje": format!("Cuenta de {} deshabilitada; sus sesiones se cerraron.", user.username),
        "usuario": user_json(&user),
    })))
}

async fn enable(
    State(st): State<AppState>,
    Extension(CurrentUser(admin)): Extension<CurrentUser>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let user = blocking(move || store.set_disabled(id, false)).await?;
    audit(&admin, "enable", &user);
    Ok(Json(json!({
        "mensaje": format!("Cuenta de {} habilitada.", user.username),
        "usuario": user_json(&user),
    })))
}

async fn delete(
    State(st): State<AppState>,
    Extension(CurrentUser(admin)): Extension<CurrentUser>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    not_self(&admin, id, "eliminar")?;
    let store = st.store.clone();
    let user = blocking(move || store.delete_user(id)).await?;
    audit(&admin, "delete", &user);
    Ok(Json(json!({
        "mensaje": format!("Cuenta de {} eliminada.", user.username),
        "usuario": user_json(&user),
    })))
}

async fn permissions(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let user = blocking(move || store.user(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("Usuario no encontrado.".into()))?;
    // `Usuario_id`, `UserName` and `Permisos` ({flag: bool}) are the old system's fields,
    // which its permissions screen reads.
    let flags: serde_json::Map<String, Value> = Permission::ALL
        .iter()
        .map(|p| (p.name().to_string(), Value::Bool(user.has(*p))))
        .collect();
    Ok(Json(json!({
        "usuario_id": user.id,
        "username": user.username,
        "permisos": user.permission_names(),
        "disponibles": Permission::ALL.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "Usuario_id": user.id,
        "UserName": user.username,
        "Permisos": flags,
    })))
}

/// A permission change as asked: the complete list (`{"permisos": [...]}`), or the old
/// system's flags (`{"VerReportes": true, ...}`) applied to the account's current ones.
enum Change {
    List(u32),
    Flags {
        set: u32,
        clear: u32,
        ignored: Vec<String>,
    },
}

fn read_change(m: &serde_json::Map<String, Value>) -> Result<Change, ApiError> {
    if let Some(list) = m.get("permisos") {
        let names: Vec<String> = serde_json::from_value(list.clone()).map_err(|_| {
            ApiError::field("permisos", "Debe ser una lista de nombres de permisos.")
        })?;
        return parse_permissions(&names).map(Change::List);
    }
    if m.is_empty() {
        return Err(ApiError::field("permisos", "Este campo es requerido."));
    }
    if m.len() > MAX_PERMISSION_NAMES {
        return Err(ApiError::BadRequest(format!(
            "Como máximo {MAX_PERMISSION_NAMES} permisos."
        )));
    }
    let (mut set, mut clear, mut ignored, mut unknown) = (0, 0, Vec::new(), Vec::new());
    let mut errors = FieldErrors::new();
    for (name, value) in m {
        let Some(on) = value.as_bool() else {
            super::accounts::push(&mut errors, name, "Debe ser true o false.");
            continue;
        };
        match Permission::from_name(name) {
            Some(p) if on => set |= p as u32,
            Some(p) => clear |= p as u32,
            None if account::RETIRED_PERMISSIONS.contains(&name.as_str()) => {
                ignored.push(name.clone())
            }
            None => unknown.push(name.chars().take(64).collect::<String>()),
        }
    }
    if !unknown.is_empty() {
        let valid: Vec<_> = Permission::ALL.iter().map(|p| p.name()).collect();
        return Err(ApiError::BadRequest(format!(
            "Permisos desconocidos: {}. Válidos: {}.",
            unknown.join(", "),
            valid.join(", ")
        )));
    }
    if !errors.is_empty() {
        return Err(ApiError::Fields(errors));
    }
    Ok(Change::Flags {
        set,
        clear,
        ignored,
    })
}

async fn change_permissions(
    State(st): State<AppState>,
    Extension(CurrentUser(admin)): Extension<CurrentUser>,
    Path(id): Path<u64>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let m = super::accounts::body(b)?;
    let change = read_change(&m)?;
    let store = st.store.clone();
    let (user, ignored) = blocking(move || {
        let (bits, ignored) = match change {
            Change::List(bits) => (bits, Vec::new()),
            Change::Flags {
                set,
                clear,
                ignored,
            } => {
                let current = store
                    .user(id)?
                    .ok_or(crate::store::users::UserError::NotFound)?;
                ((current.permissions | set) & !clear, ignored)
            }
        };
        Ok::<_, ApiError>((store.set_permissions(id, bits)?, ignored))
    })
    .await?;
    audit(&admin, "permissions", &user);
    let mensaje = if ignored.is_empty() {
        "Permisos actualizados.".to_string()
    } else {
        format!(
            "Permisos actualizados. Ignorados (no existen en este sistema): {}.",
            ignored.join(", ")
        )
    };
    Ok(Json(json!({
        "mensaje": mensaje,
        "usuario": user_json(&user),
        "ignorados": ignored,
    })))
}

/// The new password of a reset: the one given (checked like a registration's), or none.
pub(super) fn given_password(
    password: Option<String>,
    again: Option<String>,
    user: &User,
) -> Result<Option<String>, ApiError> {
    let password = password.filter(|p| !p.is_empty());
    let Some(password) = password else {
        return Ok(None);
    };
    let again = again.unwrap_or_default();
    let mut errors = FieldErrors::new();
    if again.is_empty() {
        super::accounts::push(&mut errors, "password2", "Este campo es requerido.");
    }
    check_new_password(
        &mut errors,
        ("password", &password),
        ("password2", &again),
        &[
            &user.username,
            &user.email,
            &user.first_name,
            &user.last_name,
        ],
    );
    if errors.is_empty() {
        Ok(Some(password))
    } else {
        Err(ApiError::Fields(errors))
    }
}
