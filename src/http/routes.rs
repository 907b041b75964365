//! The route table. Every API route is declared with the access it requires, and the router
//! is built from these declarations only: the guard is attached to each route from its
//! [`Access`], so no handler can forget a check, and [`super::routes`] lists the same table
//! for the access-control tests, so a new route cannot be left out of them.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};

use super::AppState;
use crate::store::users::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: registration, login, token refresh, logout and the health check.
    Open,
    /// Any approved account, whatever its permissions.
    User,
    /// An approved account holding this permission.
    Permission(Permission),
    /// The configured `auth.metrics_token`, or an approved account holding
    /// `AprobarUsuarios` (Prometheus scrapers have no account).
    MetricsScraper,
}

/// A route as the access rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method (`GET` also answers `HEAD`).
    pub method: Method,
    /// The axum path template (`/api/usuario/{id}/aprobar/`).
    pub path: &'static str,
    pub access: Access,
    /// Whether the token may travel as `?token=` (the live feed and report downloads, which
    /// browsers open without being able to add a header).
    pub token_in_query: bool,
}

/// A declared route: what it is and who may call it, with its handler.
pub struct Route {
    /// What the route is and who may call it.
    pub info: RouteInfo,
    /// The handler, not yet guarded (the router guards it from `info`).
    pub handler: MethodRouter<AppState>,
}

impl Route {
    fn new(method: Method, path: &'static str, access: Access, h: MethodRouter<AppState>) -> Self {
        Route {
            info: RouteInfo {
                method,
                path,
                access,
                token_in_query: false,
            },
            handler: h,
        }
    }

    /// Accepts the token as `?token=` too (only where a browser cannot send a header).
    pub fn token_in_query(mut self) -> Self {
        self.info.token_in_query = true;
        self
    }

    /// `GET path` answered by `handler` for callers allowed by `access`.
    pub fn get<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::GET, path, access, routing::get(handler))
    }

    /// `POST path` answered by `handler` for callers allowed by `access`.
    pub fn post<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::POST, path, access, routing::post(handler))
    }

    /// `PATCH path` answered by `handler` for callers allowed by `access`.
    pub fn patch<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::PATCH, path, access, routing::patch(handler))
    }

    /// `PUT path` answered by `handler` for callers allowed by `access`.
    pub fn put<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::PUT, path, access, routing::put(handler))
    }

    /// `DELETE path` answered by `handler` for callers allowed by `access`.
    pub fn delete<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::DELETE, path, access, routing::delete(handler))
    }
}
