//! The admin APIs of OAuth applications and API resources, end to end: REST and native gRPC
//! against the real binary and a real Postgres, with the error contract, secrets stored only
//! hashed, rotation with overlap, and authorization.

use mgpass_e2e::{TestServer, authed, grpc_reason, proto::oauth as pb, psql, rest, rest_reason};
use pb::{api_resource_service_client::ApiResourceServiceClient, application_service_client::ApplicationServiceClient};
use serde_json::{Value, json};

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// A user without admin rights, signed in.
async fn normal_user_token(server: &TestServer, admin: &str) -> String {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": "plain@example.com", "givenName": "Plain", "familyName": "User"},
                    "password": "a long enough password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.login("plain@example.com", "a long enough password").await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_over_rest_and_grpc_with_secrets_shown_once() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;

    // A web application over REST: confidential, so it gets a secret, shown in this answer only.
    let (status, created) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Dashboard", "applicationType": "APPLICATION_TYPE_WEB",
                    "redirectUris": ["https://dash.example.com/callback", "http://localhost:3000/cb"]})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let web = &created["application"];
    let web_id = web["id"].as_str().unwrap().to_string();
    let secret = created["clientSecret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mgs_") && secret.len() == 4 + 43, "256 random bits, prefixed: {secret}");
    assert_eq!(web["clientId"].as_str().unwrap().len(), 24);
    assert_eq!(
        strings(&web["grantTypes"]),
        ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_REFRESH_TOKEN"],
        "default grants of a web application"
    );
    assert_eq!(strings(&web["allowedScopes"]), ["openid", "profile", "email", "phone", "offline_access"]);
    assert_eq!(web["requirePkce"], true);
    assert_eq!(web["accessTokenLifetime"], "900s", "the deployment default");
    let secrets = web["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["hint"].as_str().unwrap(), &secret[secret.len() - 4..]);
    assert!(secrets[0].get("expireTime").is_none());

    // A SPA over REST: public, no secret.
    let (status, spa) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Shop", "applicationType": "APPLICATION_TYPE_SPA",
                    "redirectUris": ["https://shop.example.com/cb"], "allowedOrigins": ["https://Shop.example.com:443"]})),
    )
    .await;
    assert_eq!(status, 200, "{spa}");
    assert_eq!(spa["clientSecret"].as_str().unwrap_or(""), "");
    assert!(spa["application"]["secrets"].as_array().is_none_or(Vec::is_empty));
    assert_eq!(strings(&spa["application"]["allowedOrigins"]), ["https://shop.example.com"], "origins are normalised");

    // Native and M2M over gRPC.
    let mut grpc = ApplicationServiceClient::new(server.channel().await);
    let native = grpc
        .create_application(authed(
            pb::CreateApplicationRequest {
                application: Some(pb::Application {
                    name: "Phone app".into(),
                    application_type: pb::ApplicationType::Native as i32,
                    redirect_uris: vec!["com.example.app:/callback".into(), "http://127.0.0.1/callback".into()],
                    ..Default::default()
                }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(native.client_secret.is_empty());
    let n = native.application.unwrap();
    assert!(n.grant_types.contains(&(pb::GrantType::DeviceCode as i32)));
    assert_eq!(n.require_pkce, Some(true));
    let m2m = grpc
        .create_application(authed(
            pb::CreateApplicationRequest {
                application: Some(pb::Application {
                    name: "Billing worker".into(),
                    application_type: pb::ApplicationType::M2m as i32,
                    ..Default::default()
                }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let m2m_secret = m2m.client_secret.clone();
    assert!(m2m_secret.starts_with("mgs_"));
    let m = m2m.application.unwrap();
    assert_eq!(m.grant_types, vec![pb::GrantType::ClientCredentials as i32]);
    assert!(m.allowed_scopes.is_empty() && m.redirect_uris.is_empty());
    assert_eq!(m.secrets.len(), 1);

    // Never again: not in Get, not in List, over either transport.
    let (status, got) = rest(&server, &token, "GET", &format!("/v1/applications/{web_id}"), None).await;
    assert_eq!(status, 200);
    assert!(!got.to_string().contains(&secret[4..]), "Get shows no secret");
    assert_eq!(got["application"]["secrets"].as_array().unwrap().len(), 1, "but its hint and times");
    let (_, listed) = rest(&server, &token, "GET", "/v1/applications", None).await;
    assert_eq!(listed["applications"].as_array().unwrap().len(), 4);
    assert!(!listed.to_string().contains(&secret[4..]) && !listed.to_string().contains(&m2m_secret[4..]));
    let got = grpc
        .get_application(authed(pb::GetApplicationRequest { application_id: m.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{got:?}").contains(&m2m_secret[4..]));

    // In the database only the SHA-256 of the secret, nowhere the secret itself.
    let db = &server.database_url;
    assert_eq!(
        psql(db, &format!("SELECT count(*) FROM client_secrets WHERE secret_hash = sha256('{secret}'::bytea)")),
        "1"
    );
    for table in ["client_secrets", "applications"] {
        let clear = psql(db, &format!("SELECT count(*) FROM {table} t WHERE t::text LIKE '%{}%'", &secret[4..]));
        assert_eq!(clear, "0", "the secret is in {table} in clear");
    }

    // Malformed and unknown ids.
    let (status, body) = rest(&server, &token, "GET", "/v1/applications/not-a-uuid", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"));
    let (status, body) =
        rest(&server, &token, "GET", &format!("/v1/applications/{}", uuid::Uuid::new_v4()), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "APPLICATION_NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_keeps_the_previous_secret_for_the_overlap() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (_, created) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Worker", "applicationType": "APPLICATION_TYPE_M2M"})),
    )
    .await;
    let id = created["application"]["id"].as_str().unwrap().to_string();
    let client_id = created["application"]["clientId"].as_str().unwrap().to_string();
    let first = created["clientSecret"].as_str().unwrap().to_string();
    let path = format!("/v1/applications/{id}:rotateSecret");
    let rotate = |overlap: Option<&str>| {
        let body = overlap.map_or(json!({}), |o| json!({"overlap": o}));
        rest(&server, &token, "POST", &path, Some(body))
    };

    // One hour of overlap: both secrets listed, the previous one with its expiry.
    let (status, rotated) = rotate(Some("3600s")).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["clientSecret"].as_str().unwrap().to_string();
    assert!(second.starts_with("mgs_") && second != first);
    let secrets = rotated["application"]["secrets"].as_array().unwrap().clone();
    assert_eq!(secrets.len(), 2, "{secrets:?}");
    let new = secrets.iter().find(|s| s["hint"].as_str() == Some(&second[second.len() - 4..])).unwrap();
    let old = secrets.iter().find(|s| s["hint"].as_str() == Some(&first[first.len() - 4..])).unwrap();
    assert!(new.get("expireTime").is_none(), "the new secret does not expire");
    let until = psql(
        &server.database_url,
        "SELECT round(extract(epoch FROM expires_at - now())) FROM client_secrets WHERE expires_at IS NOT NULL",
    );
    assert!((3590..=3600).contains(&until.parse::<i64>().unwrap()), "{until}");
    assert!(old["expireTime"].as_str().is_some());

    // Both secrets authenticate the client during the overlap (the registry the token endpoint uses).
    let pool = mgpass_server::db::pool(&server.database_url, 2).unwrap();
    let registry = mgpass_server::oauth::clients::ClientRegistry::new(pool.clone(), std::time::Duration::ZERO);
    assert!(registry.authenticate(&client_id, Some(&first)).await.is_ok());
    assert!(registry.authenticate(&client_id, Some(&second)).await.is_ok());

    // Without overlap (a leak): only the newest remains, the others stop and are gone.
    let (status, rotated) = rotate(None).await;
    assert_eq!(status, 200, "{rotated}");
    let third = rotated["clientSecret"].as_str().unwrap().to_string();
    assert_eq!(rotated["application"]["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM client_secrets"), "1");
    assert!(registry.authenticate(&client_id, Some(&first)).await.is_err());
    assert!(registry.authenticate(&client_id, Some(&second)).await.is_err());
    assert!(registry.authenticate(&client_id, Some(&third)).await.is_ok());

    for bad in ["-5s", "2678400s"] {
        let (status, body) = rotate(Some(bad)).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ARGUMENT"), "{bad}");
    }
    let (_, spa) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "SPA", "applicationType": "APPLICATION_TYPE_SPA"})),
    )
    .await;
    let spa_id = spa["application"]["id"].as_str().unwrap();
    let (status, body) =
        rest(&server, &token, "POST", &format!("/v1/applications/{spa_id}:rotateSecret"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "PUBLIC_CLIENT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configurations_are_refused_and_nothing_is_created() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let bad_redirects = [
        ("WEB", "http://app.example.com/cb"),
        ("WEB", "https://app.example.com/cb#fragment"),
        ("WEB", "https://*.example.com/cb"),
        ("WEB", "https://app.example.com/*"),
        ("WEB", "/relative/callback"),
        ("WEB", "app.example.com/cb"),
        ("WEB", "javascript:alert(1)"),
        ("WEB", "https://user:pass@app.example.com/cb"),
        ("WEB", "http://localhost.evil.com/cb"),
        ("WEB", "com.example.app:/callback"),
        ("SPA", "data:text/html,<script>alert(1)</script>"),
        ("SPA", "http://192.168.1.10/cb"),
        ("NATIVE", "myapp://callback"),
        ("NATIVE", "javascript:alert(1)"),
        ("NATIVE", "http://example.com/cb"),
        ("M2M", "https://app.example.com/cb"),
    ];
    for (kind, uri) in bad_redirects {
        for field in ["redirectUris", "postLogoutRedirectUris"] {
            let mut app = json!({"name": "Bad", "applicationType": format!("APPLICATION_TYPE_{kind}")});
            app[field] = json!([uri]);
            let (status, body) = rest(&server, &token, "POST", "/v1/applications", Some(app)).await;
            assert_eq!(
                (status, rest_reason(&body).as_str()),
                (400, "INVALID_REDIRECT_URI"),
                "{kind} {field} {uri}: {body}"
            );
        }
    }
    let bad_other = [
        (
            json!({"applicationType": "APPLICATION_TYPE_WEB", "grantTypes": ["GRANT_TYPE_CLIENT_CREDENTIALS"]}),
            "INVALID_GRANT_TYPES",
        ),
        (
            json!({"applicationType": "APPLICATION_TYPE_M2M", "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE"]}),
            "INVALID_GRANT_TYPES",
        ),
        (
            json!({"applicationType": "APPLICATION_TYPE_SPA", "grantTypes": ["GRANT_TYPE_DEVICE_CODE"]}),
            "INVALID_GRANT_TYPES",
        ),
        (
            json!({"applicationType": "APPLICATION_TYPE_SPA", "allowedOrigins": ["https://app.example.com/path"]}),
            "INVALID_ORIGIN",
        ),
        (
            json!({"applicationType": "APPLICATION_TYPE_SPA", "allowedOrigins": ["http://app.example.com"]}),
            "INVALID_ORIGIN",
        ),
        (json!({"applicationType": "APPLICATION_TYPE_SPA", "requirePkce": false}), "INVALID_ARGUMENT"),
        (json!({"applicationType": "APPLICATION_TYPE_NATIVE", "requirePkce": false}), "INVALID_ARGUMENT"),
        (json!({"applicationType": "APPLICATION_TYPE_WEB", "allowedScopes": ["openid", "admin"]}), "UNKNOWN_SCOPE"),
        (
            json!({"applicationType": "APPLICATION_TYPE_WEB",
                "allowedResources": [{"resource": "https://nope.example.com", "scopes": ["read"]}]}),
            "UNKNOWN_SCOPE",
        ),
        (
            json!({"applicationType": "APPLICATION_TYPE_WEB",
                "allowedResources": [{"resource": "mgpass", "scopes": ["no.such.permission"]}]}),
            "UNKNOWN_SCOPE",
        ),
        (json!({"applicationType": "APPLICATION_TYPE_WEB", "accessTokenLifetime": "5s"}), "INVALID_ARGUMENT"),
        (json!({"applicationType": "APPLICATION_TYPE_WEB", "branding": {"primaryColor": "red"}}), "INVALID_ARGUMENT"),
        (json!({"applicationType": "APPLICATION_TYPE_UNSPECIFIED"}), "INVALID_ARGUMENT"),
        (json!({"applicationType": "APPLICATION_TYPE_WEB", "name": "  "}), "INVALID_ARGUMENT"),
    ];
    for (mut app, reason) in bad_other {
        if app.get("name").is_none() {
            app["name"] = json!("Bad");
        }
        let (status, body) = rest(&server, &token, "POST", "/v1/applications", Some(app.clone())).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, reason), "{app}: {body}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM applications"), "0", "nothing was created");
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM client_secrets"), "0");

    // The good ones of each type pass, including a scope of the mgpass API.
    let (status, body) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Admin console", "applicationType": "APPLICATION_TYPE_WEB", "requirePkce": false,
                    "allowedResources": [{"resource": "mgpass", "scopes": ["identity.users.read"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["application"]["requirePkce"], false, "a confidential web app may turn PKCE off");
}

#[tokio::test(flavor = "multi_thread")]
async fn field_mask_updates_delete_and_paging() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (_, created) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Portal", "description": "The portal", "applicationType": "APPLICATION_TYPE_WEB",
                    "redirectUris": ["https://portal.example.com/cb"]})),
    )
    .await;
    let app = &created["application"];
    let id = app["id"].as_str().unwrap().to_string();
    let client_id = app["clientId"].as_str().unwrap().to_string();

    // Only the masked fields change.
    let (status, updated) = rest(
        &server,
        &token,
        "PATCH",
        &format!("/v1/applications/{id}?updateMask=name,redirectUris,accessTokenLifetime"),
        Some(json!({"name": "Portal 2", "description": "ignored", "redirectUris": ["https://portal2.example.com/cb"],
                    "accessTokenLifetime": "120s"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let u = &updated["application"];
    assert_eq!(u["name"], "Portal 2");
    assert_eq!(u["description"], "The portal", "outside the mask");
    assert_eq!(strings(&u["redirectUris"]), ["https://portal2.example.com/cb"]);
    assert_eq!(u["accessTokenLifetime"], "120s");
    assert_eq!(u["clientId"], client_id.as_str());

    // Immutable and output-only paths, and values that break the type's rules.
    for path in ["applicationType", "clientId", "secrets", "createTime", "nope"] {
        let (status, body) = rest(
            &server,
            &token,
            "PATCH",
            &format!("/v1/applications/{id}?updateMask={path}"),
            Some(json!({"applicationType": "APPLICATION_TYPE_M2M"})),
        )
        .await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_UPDATE_MASK"), "{path}");
    }
    let mut grpc = ApplicationServiceClient::new(server.channel().await);
    let update = |app: pb::Application, paths: &[&str]| {
        authed(
            pb::UpdateApplicationRequest {
                application: Some(pb::Application { id: id.clone(), ..app }),
                update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
            },
            &token,
        )
    };
    let err = grpc
        .update_application(update(
            pb::Application { redirect_uris: vec!["http://evil.com/cb".into()], ..Default::default() },
            &["redirect_uris"],
        ))
        .await
        .unwrap_err();
    assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::InvalidArgument, "INVALID_REDIRECT_URI"));
    let err = grpc
        .update_application(update(
            pb::Application { grant_types: vec![pb::GrantType::ClientCredentials as i32], ..Default::default() },
            &["grant_types"],
        ))
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "INVALID_GRANT_TYPES");
    let err = grpc.update_application(update(pb::Application::default(), &[])).await.unwrap_err();
    assert_eq!(grpc_reason(&err), "INVALID_UPDATE_MASK");
    let ok = grpc
        .update_application(update(
            pb::Application {
                grant_types: vec![pb::GrantType::AuthorizationCode as i32, pb::GrantType::DeviceCode as i32],
                require_pkce: Some(false),
                ..Default::default()
            },
            &["grant_types", "require_pkce"],
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(ok.grant_types, vec![pb::GrantType::AuthorizationCode as i32, pb::GrantType::DeviceCode as i32]);
    assert_eq!(ok.require_pkce, Some(false));
    assert_eq!(ok.redirect_uris, vec!["https://portal2.example.com/cb".to_string()], "refused updates wrote nothing");

    // Paging: 7 applications in pages of 3, each once; filters by type and by name.
    for i in 0..6 {
        let kind = if i % 2 == 0 { "APPLICATION_TYPE_SPA" } else { "APPLICATION_TYPE_M2M" };
        let (status, _) = rest(
            &server,
            &token,
            "POST",
            "/v1/applications",
            Some(json!({"name": format!("Paged {i}"), "applicationType": kind})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let (status, page) =
            rest(&server, &token, "GET", &format!("/v1/applications?pageSize=3&pageToken={page_token}"), None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for a in page["applications"].as_array().unwrap() {
            seen.push(a["id"].as_str().unwrap().to_string());
        }
        page_token = page["nextPageToken"].as_str().unwrap_or("").to_string();
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7, "no application twice");
    let (_, m2m) = rest(&server, &token, "GET", "/v1/applications?applicationType=APPLICATION_TYPE_M2M", None).await;
    assert_eq!(m2m["applications"].as_array().unwrap().len(), 3);
    let (_, named) = rest(&server, &token, "GET", "/v1/applications?query=portal", None).await;
    assert_eq!(named["applications"].as_array().unwrap().len(), 1);
    let (_, by_client) = rest(&server, &token, "GET", &format!("/v1/applications?query={client_id}"), None).await;
    assert_eq!(by_client["applications"][0]["id"], id.as_str());
    let (status, body) = rest(&server, &token, "GET", "/v1/applications?pageToken=garbage!", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_PAGE_TOKEN"));

    // Delete: gone, with its secrets.
    let (status, _) = rest(&server, &token, "DELETE", &format!("/v1/applications/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, body) = rest(&server, &token, "GET", &format!("/v1/applications/{id}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "APPLICATION_NOT_FOUND"));
    let (status, body) = rest(&server, &token, "DELETE", &format!("/v1/applications/{id}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "APPLICATION_NOT_FOUND"));
    assert_eq!(
        psql(&server.database_url, &format!("SELECT count(*) FROM client_secrets WHERE application_id = '{id}'")),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_resources_crud_validation_and_references() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;

    // The built-in resource: listed, with mgpass:admin and every declared permission; untouchable.
    let (_, listed) = rest(&server, &token, "GET", "/v1/apiResources", None).await;
    let resources = listed["apiResources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    let system = &resources[0];
    assert_eq!((system["indicator"].as_str(), system["system"].as_bool()), (Some("mgpass"), Some(true)));
    let names: Vec<&str> = system["scopes"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"mgpass:admin") && names.contains(&"oauth.applications.create"), "{names:?}");
    let system_id = system["id"].as_str().unwrap();
    let (status, body) = rest(
        &server,
        &token,
        "PATCH",
        &format!("/v1/apiResources/{system_id}?updateMask=name"),
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "SYSTEM_RESOURCE_IMMUTABLE"));
    let (status, body) = rest(&server, &token, "DELETE", &format!("/v1/apiResources/{system_id}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "SYSTEM_RESOURCE_IMMUTABLE"));

    // Create over gRPC; the indicator is unique.
    let mut grpc = ApiResourceServiceClient::new(server.channel().await);
    let scope = |name: &str| pb::ApiScope { name: name.into(), description: format!("{name} things") };
    let create = |indicator: &str, scopes: Vec<pb::ApiScope>| {
        authed(
            pb::CreateApiResourceRequest {
                api_resource: Some(pb::ApiResource {
                    indicator: indicator.into(),
                    name: "Content API".into(),
                    scopes,
                    ..Default::default()
                }),
            },
            &token,
        )
    };
    let api = grpc
        .create_api_resource(create("https://api.example.com", vec![scope("content:read"), scope("content:write")]))
        .await
        .unwrap()
        .into_inner()
        .api_resource
        .unwrap();
    assert!(!api.system);
    let err = grpc.create_api_resource(create("https://api.example.com", vec![])).await.unwrap_err();
    assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::AlreadyExists, "RESOURCE_INDICATOR_TAKEN"));
    for (indicator, scopes, reason) in [
        ("api.example.com", vec![], "INVALID_RESOURCE_INDICATOR"),
        ("https://api2.example.com/#x", vec![], "INVALID_RESOURCE_INDICATOR"),
        ("mgpass", vec![], "INVALID_RESOURCE_INDICATOR"),
        ("https://api2.example.com", vec![scope("has space")], "INVALID_SCOPE_NAME"),
        ("https://api2.example.com", vec![scope("quote\"d")], "INVALID_SCOPE_NAME"),
        ("https://api2.example.com", vec![scope("openid")], "INVALID_SCOPE_NAME"),
        ("https://api2.example.com", vec![scope("a"), scope("a")], "DUPLICATE_SCOPE"),
    ] {
        let err = grpc.create_api_resource(create(indicator, scopes)).await.unwrap_err();
        assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::InvalidArgument, reason), "{indicator}");
    }
    let (status, body) = rest(
        &server,
        &token,
        "PATCH",
        &format!("/v1/apiResources/{}?updateMask=indicator", api.id),
        Some(json!({"indicator": "https://other.example.com"})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_UPDATE_MASK"), "the indicator is immutable");

    // An application and a role reference its scopes; undefined scopes are refused.
    let (status, body) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Reader", "applicationType": "APPLICATION_TYPE_WEB",
                    "allowedResources": [{"resource": "https://api.example.com", "scopes": ["content:delete"]}]})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "UNKNOWN_SCOPE"));
    let (status, app) = rest(
        &server,
        &token,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Reader", "applicationType": "APPLICATION_TYPE_WEB",
                    "allowedResources": [{"resource": "https://api.example.com", "scopes": ["content:read", "content:write"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    let app_id = app["application"]["id"].as_str().unwrap().to_string();
    let (status, role) = rest(
        &server,
        &token,
        "POST",
        "/v1/roles",
        Some(json!({"name": "writer", "scopes": [{"resource": "https://api.example.com", "scopes": ["content:write"]},
                                                 {"resource": "mgpass", "scopes": ["identity.users.read"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{role}");
    let role_id = role["role"]["id"].as_str().unwrap().to_string();

    // Removing a scope removes it from the application and the role.
    let (status, updated) = rest(
        &server,
        &token,
        "PATCH",
        &format!("/v1/apiResources/{}?updateMask=scopes,description", api.id),
        Some(json!({"scopes": [{"name": "content:read"}], "description": "Read only now"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["apiResource"]["scopes"].as_array().unwrap().len(), 1);
    assert_eq!(updated["apiResource"]["description"], "Read only now");
    let (_, got) = rest(&server, &token, "GET", &format!("/v1/applications/{app_id}"), None).await;
    assert_eq!(
        got["application"]["allowedResources"],
        json!([{"resource": "https://api.example.com", "scopes": ["content:read"]}])
    );
    let (_, got) = rest(&server, &token, "GET", &format!("/v1/roles/{role_id}"), None).await;
    assert_eq!(got["role"]["scopes"], json!([{"resource": "mgpass", "scopes": ["identity.users.read"]}]));

    // Deleting the resource removes the rest of its references (as the API contract says).
    let (status, _) = rest(&server, &token, "DELETE", &format!("/v1/apiResources/{}", api.id), None).await;
    assert_eq!(status, 200);
    let (status, body) = rest(&server, &token, "GET", &format!("/v1/apiResources/{}", api.id), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "API_RESOURCE_NOT_FOUND"));
    let (_, got) = rest(&server, &token, "GET", &format!("/v1/applications/{app_id}"), None).await;
    assert!(got["application"]["allowedResources"].as_array().is_none_or(Vec::is_empty), "{got}");

    // Listing with a query, and paging over several resources.
    for i in 0..3 {
        let (status, _) = rest(
            &server,
            &token,
            "POST",
            "/v1/apiResources",
            Some(json!({"indicator": format!("urn:example:api:{i}"), "name": format!("Internal {i}")})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, page) = rest(&server, &token, "GET", "/v1/apiResources?pageSize=2", None).await;
    assert_eq!(page["apiResources"].as_array().unwrap().len(), 2);
    let next = page["nextPageToken"].as_str().unwrap();
    let (_, page) = rest(&server, &token, "GET", &format!("/v1/apiResources?pageSize=2&pageToken={next}"), None).await;
    assert_eq!(page["apiResources"].as_array().unwrap().len(), 2);
    assert!(page["nextPageToken"].as_str().unwrap_or("").is_empty());
    let (_, found) = rest(&server, &token, "GET", "/v1/apiResources?query=internal%201", None).await;
    assert_eq!(found["apiResources"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_administrators_manage_applications_and_resources() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let user = normal_user_token(&server, &admin).await;
    let calls = [
        ("GET", "/v1/applications", None),
        ("POST", "/v1/applications", Some(json!({"name": "x", "applicationType": "APPLICATION_TYPE_SPA"}))),
        ("GET", "/v1/apiResources", None),
        ("POST", "/v1/apiResources", Some(json!({"indicator": "https://x.example.com", "name": "x"}))),
        ("GET", "/v1/roles", None),
    ];
    for (method, path, body) in calls {
        let (status, answer) = rest(&server, &user, method, path, body.clone()).await;
        assert_eq!((status, rest_reason(&answer).as_str()), (403, "PERMISSION_DENIED"), "{method} {path}");
        let (status, answer) = rest(&server, "", method, path, body).await;
        assert_eq!((status, rest_reason(&answer).as_str()), (401, "UNAUTHENTICATED"), "{method} {path}");
    }
    let mut apps = ApplicationServiceClient::new(server.channel().await);
    let err = apps.list_applications(authed(pb::ListApplicationsRequest::default(), &user)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = apps.list_applications(tonic::Request::new(pb::ListApplicationsRequest::default())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut resources = ApiResourceServiceClient::new(server.channel().await);
    let err = resources.create_api_resource(authed(pb::CreateApiResourceRequest::default(), &user)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM applications"), "0");
}
