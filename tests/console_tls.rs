//! `[tls]`: the listener speaks HTTPS with the configured PEM certificate, every response carries
//! HSTS and every cookie (console session, API refresh) is `Secure`.

mod common;

use common::{ADMIN_PASSWORD, Appliance, Backend, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_hsts_and_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let config = dir.path().join("ironbay.toml");
    std::fs::write(
        &config,
        format!("[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n", cert_path.display(), key_path.display()),
    )
    .unwrap();
    let app =
        Appliance::start_with(Backend::Sqlite, Options::default().env("IRONBAY_CONFIG", config.to_str().unwrap()))
            .await;
    assert!(app.base.starts_with("https://"), "{}", app.base);

    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The login form over HTTPS: HSTS on the page, its pre-login cookie Secure.
    let r = http.get(format!("{}/login", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    let csrf_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(csrf_cookie.ends_with("; Secure"), "{csrf_cookie}");
    let html = r.text().await.unwrap();
    let token = common::console::csrf_of(&html).unwrap();
    let cookie_pair = csrf_cookie.split(';').next().unwrap().to_string();

    let body =
        serde_urlencoded::to_string([("_csrf", token.as_str()), ("username", "admin"), ("password", ADMIN_PASSWORD)])
            .unwrap();
    let r = http
        .post(format!("{}/login", app.base))
        .header("cookie", cookie_pair)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session_cookie = session.iter().find(|c| c.starts_with("ironbay_session=")).expect("session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.ends_with("; Secure"), "{session_cookie}");

    // The API's login cookies too, and its JSON answers carry HSTS.
    let r = http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("strict-transport-security"));
    for c in r.headers().get_all("set-cookie") {
        assert!(c.to_str().unwrap().ends_with("; Secure"), "{c:?}");
    }

    // Plain HTTP on the TLS port gets no page.
    let plain = reqwest::Client::new().get(app.base.replace("https://", "http://") + "/login").send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_without_its_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ironbay.toml");
    std::fs::write(&config, "[tls]\ncert_file = \"/nonexistent/cert.pem\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironbay"))
        .args(["serve", "--data-dir", dir.path().to_str().unwrap()])
        .env("IRONBAY_CONFIG", &config)
        .env("IRONBAY_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.key_file"), "{err}");

    // Both given, but the files are not there: the start fails naming the file.
    std::fs::write(&config, "[tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironbay"))
        .args(["serve", "--data-dir", dir.path().to_str().unwrap()])
        .env("IRONBAY_CONFIG", &config)
        .env("IRONBAY_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
