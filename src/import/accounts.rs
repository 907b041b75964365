//! Accounts of the old system: `auth.user` with its `usuarios.perfil` (approval) and
//! `usuarios.permisos` (flags), checked by the registration rules.

use std::collections::HashMap;

use chrono_tz::Tz;
use serde_json::Value;

use super::dump::{BadRecord, Ctx, Parsed, Record, pk_of};
use crate::rules::account::{self, Identity};
use crate::store::users::{NewUser, Permission};

/// Flags of `usuarios.permisos` that exist here.
const FLAGS: [(&str, Permission); 4] = [
    ("AprobarUsuarios", Permission::AprobarUsuarios),
    ("VerDashboard", Permission::VerDashboard),
    ("VerReportes", Permission::VerReportes),
    ("GenerarReportes", Permission::GenerarReportes),
];

/// Accounts: `auth.user` with its `usuarios.perfil` and `usuarios.permisos`. Returns the user
/// names by old pk (reports name their author).
pub(super) fn users<'a>(
    tz: Tz,
    take: &dyn Fn(&str) -> Vec<&'a Record>,
    out: &mut Parsed,
) -> Result<HashMap<u64, String>, BadRecord> {
    let mut flags: HashMap<u64, u32> = HashMap::new();
    for r in take("usuarios.permisos") {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let fields = r.fields()?;
        let mut bits = 0;
        for (name, p) in FLAGS {
            if ctx.flag(&fields, name)? {
                bits |= p as u32;
            }
        }
        for name in account::RETIRED_PERMISSIONS {
            ctx.flag(&fields, name)?;
        }
        flags.insert(pk_of(r).unwrap_or_default(), bits);
    }
    let mut profiles: HashMap<u64, (bool, u32)> = HashMap::new();
    for r in take("usuarios.perfil") {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let fields = r.fields()?;
        let user = ctx
            .key(&fields, "user")?
            .ok_or_else(|| ctx.bad("`user` is empty"))?;
        let permisos = match fields.get("permisos") {
            None => None,
            Some(_) => ctx.key(&fields, "permisos")?,
        };
        let bits = match permisos {
            Some(k) => *flags.get(&k).ok_or_else(|| {
                ctx.bad(format!(
                    "`permisos` names usuarios.permisos pk={k}, which is not in the file"
                ))
            })?,
            None => 0,
        };
        profiles.insert(user, (ctx.flag(&fields, "aprobado")?, bits));
    }
    let mut names = HashMap::new();
    let mut emails: HashMap<String, String> = HashMap::new();
    for r in take("auth.user") {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let f = &r.fields()?;
        let username = ctx.text(f, "username")?.trim().to_string();
        let email = ctx.text(f, "email")?.trim().to_string();
        let (first_name, last_name) = (ctx.text(f, "first_name")?, ctx.text(f, "last_name")?);
        let mut errors = crate::rules::FieldErrors::new();
        Identity {
            username: &username,
            email: &email,
            first_name: &first_name,
            last_name: &last_name,
        }
        .check(&mut errors);
        if username.is_empty() {
            crate::rules::push(&mut errors, "username", account::USERNAME_RULE);
        }
        if let Some((field, msgs)) = errors.iter().next() {
            return Err(ctx.bad(format!("{field}: {}", msgs.join(" "))));
        }
        if !email.is_empty()
            && let Some(other) = emails.insert(email.to_lowercase(), username.clone())
        {
            return Err(ctx.bad(format!("e-mail {email:?} is also the e-mail of {other:?}")));
        }
        let password = ctx.text(f, "password")?;
        if crate::auth::django::parse(&password).is_none() {
            out.unusable_passwords.push(username.clone());
        }
        let superuser = ctx.flag(f, "is_superuser")?;
        let active = f.get("is_active").and_then(Value::as_bool).unwrap_or(true);
        let (approved, bits) = profiles
            .get(&pk_of(r).unwrap_or_default())
            .copied()
            .unwrap_or((false, 0));
        let (approved, permissions) = if superuser {
            (active, Permission::all_bits())
        } else if approved && active {
            // Every approved account could create stages in the old system.
            (true, bits | Permission::GestionarLlenados as u32)
        } else {
            (false, 0)
        };
        let created_us = ctx
            .time(f, "date_joined")
            .unwrap_or_else(|_| crate::sitetime::now_us());
        names.insert(pk_of(r).unwrap_or_default(), username.clone());
        out.batch.users.push((
            NewUser {
                username,
                email,
                first_name,
                last_name,
                password_hash: password,
                approved,
                permissions,
            },
            created_us,
        ));
    }
    Ok(names)
}
