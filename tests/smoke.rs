//! The appliance starts on both backends and answers health and an authenticated call.

mod common;

use common::{Appliance, Backend};

async fn health_and_login(backend: Backend) {
    let app = Appliance::start(backend).await;
    let r = app.client().get("/api/v1/health").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ok");
    assert_eq!(r.json["services"]["database"]["state"], "up");
    assert_eq!(
        r.json["services"]["database"]["detail"],
        if backend == Backend::Sqlite { "sqlite" } else { "postgres" }
    );
    assert!(r.json["version"].is_string() && r.json["uptime_secs"].is_u64());
    let admin = app.admin().await;
    let me = admin.get("/api/v1/auth/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json["username"], "admin");
    assert_eq!(me.json["role"], "admin");
}

both_backends!(health_and_login);
