//! Global roles end to end: CRUD with the system roles protected, assignment to users and M2M
//! applications over REST and gRPC, default roles of new users, the last super admin, and
//! concurrent assignments.

use mgpass_e2e::{TestServer, authed, grpc_reason, proto::access as pb, rest, rest_reason};
use pb::role_service_client::RoleServiceClient;
use serde_json::{Value, json};

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default();
    out.sort();
    out
}

/// Creates a role over REST and returns its id.
async fn create_role(server: &TestServer, token: &str, role: Value) -> String {
    let (status, body) = rest(server, token, "POST", "/v1/roles", Some(role)).await;
    assert_eq!(status, 200, "{body}");
    body["role"]["id"].as_str().unwrap().to_string()
}

/// Creates a user over REST and returns the answer's `user`.
async fn create_user(server: &TestServer, token: &str, email: &str, roles: &[&str]) -> (u16, Value) {
    let (status, body) = rest(
        server,
        token,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Test", "familyName": "User", "roles": roles},
                    "password": "a long enough password"})),
    )
    .await;
    (status, body)
}

async fn user_roles(server: &TestServer, token: &str, user_id: &str) -> Vec<String> {
    let (status, body) = rest(server, token, "GET", &format!("/v1/users/{user_id}"), None).await;
    assert_eq!(status, 200, "{body}");
    strings(&body["user"]["roles"])
}

async fn create_app(server: &TestServer, token: &str, kind: &str) -> String {
    let (status, body) = rest(
        server,
        token,
        "POST",
        "/v1/applications",
        Some(json!({"name": format!("{kind} app"), "applicationType": format!("APPLICATION_TYPE_{kind}")})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["application"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_with_system_roles_protected() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (_, listed) = rest(&server, &token, "GET", "/v1/roles", None).await;
    let roles = listed["roles"].as_array().unwrap();
    let system: Vec<String> =
        roles.iter().filter(|r| r["system"] == true).map(|r| r["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(system.len(), 3, "{listed}");
    let id_of = |name: &str| roles.iter().find(|r| r["name"] == name).unwrap()["id"].as_str().unwrap().to_string();
    let (admin_id, user_id) = (id_of("admin"), id_of("user"));

    let (status, _) = rest(
        &server,
        &token,
        "POST",
        "/v1/apiResources",
        Some(json!({"indicator": "https://api.example.com", "name": "API", "scopes": [{"name": "read"}, {"name": "write"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let editor = create_role(
        &server,
        &token,
        json!({"name": "editor", "description": "Edits", "scopes": [{"resource": "https://api.example.com", "scopes": ["read", "write"]}]}),
    )
    .await;
    for (role, reason, status) in [
        (json!({"name": "editor"}), "ROLE_NAME_TAKEN", 409),
        (json!({"name": "Editor"}), "ROLE_NAME_TAKEN", 409),
        (json!({"name": "1editor"}), "INVALID_ARGUMENT", 400),
        (json!({"name": "has space"}), "INVALID_ARGUMENT", 400),
        (json!({"name": "x".repeat(65)}), "INVALID_ARGUMENT", 400),
        (json!({"name": "both", "defaultForNewUsers": true, "m2mOnly": true}), "INVALID_ARGUMENT", 400),
        (
            json!({"name": "ghost", "scopes": [{"resource": "https://api.example.com", "scopes": ["delete"]}]}),
            "UNKNOWN_SCOPE",
            400,
        ),
        (
            json!({"name": "ghost", "scopes": [{"resource": "https://none.example.com", "scopes": ["read"]}]}),
            "UNKNOWN_SCOPE",
            400,
        ),
    ] {
        let (got, body) = rest(&server, &token, "POST", "/v1/roles", Some(role.clone())).await;
        assert_eq!((got, rest_reason(&body).as_str()), (status, reason), "{role}");
    }

    // Get and a masked update over gRPC.
    let mut grpc = RoleServiceClient::new(server.channel().await);
    let got = grpc.get_role(authed(pb::GetRoleRequest { role_id: editor.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!(got.role.unwrap().scopes[0].scopes, vec!["read", "write"]);
    let update = |id: &str, role: pb::Role, paths: &[&str]| {
        authed(
            pb::UpdateRoleRequest {
                role: Some(pb::Role { id: id.to_string(), ..role }),
                update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
            },
            &token,
        )
    };
    let updated = grpc
        .update_role(update(
            &editor,
            pb::Role { description: "Edits content".into(), name: "ignored".into(), ..Default::default() },
            &["description"],
        ))
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!((updated.name.as_str(), updated.description.as_str()), ("editor", "Edits content"));
    let err = grpc
        .update_role(update(&editor, pb::Role { name: "renamed".into(), ..Default::default() }, &["name"]))
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "INVALID_UPDATE_MASK", "names are immutable");

    // System roles: not deletable, flags and mgpass scopes fixed; description and other scopes free.
    let (status, body) = rest(&server, &token, "DELETE", &format!("/v1/roles/{admin_id}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "SYSTEM_ROLE_IMMUTABLE"));
    for (id, body, mask) in [
        (&user_id, json!({"defaultForNewUsers": false}), "defaultForNewUsers"),
        (&admin_id, json!({"m2mOnly": true}), "m2mOnly"),
        (&admin_id, json!({"scopes": []}), "scopes"),
        (
            &admin_id,
            json!({"scopes": [{"resource": "mgpass", "scopes": ["mgpass:admin", "identity.users.read"]}]}),
            "scopes",
        ),
    ] {
        let (status, answer) =
            rest(&server, &token, "PATCH", &format!("/v1/roles/{id}?updateMask={mask}"), Some(body.clone())).await;
        assert_eq!((status, rest_reason(&answer).as_str()), (400, "SYSTEM_ROLE_IMMUTABLE"), "{body}");
    }
    let (status, answer) = rest(
        &server,
        &token,
        "PATCH",
        &format!("/v1/roles/{admin_id}?updateMask=description,scopes"),
        Some(json!({"description": "Admins", "scopes": [{"resource": "mgpass", "scopes": ["mgpass:admin"]},
                                                          {"resource": "https://api.example.com", "scopes": ["read"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["role"]["scopes"].as_array().unwrap().len(), 2);

    // Deleting a role takes it from its holders.
    let (_, user) = create_user(&server, &token, "holder@example.com", &["user", "editor"]).await;
    let holder = user["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(user_roles(&server, &token, &holder).await, ["editor", "user"]);
    let (status, _) = rest(&server, &token, "DELETE", &format!("/v1/roles/{editor}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(user_roles(&server, &token, &holder).await, ["user"]);
    let (status, body) = rest(&server, &token, "GET", &format!("/v1/roles/{editor}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ROLE_NOT_FOUND"));
    let (status, body) = rest(&server, &token, "GET", "/v1/roles/nope", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"));
}

#[tokio::test(flavor = "multi_thread")]
async fn assignment_to_users_and_m2m_applications() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let editor = create_role(&server, &token, json!({"name": "editor"})).await;
    let machine = create_role(&server, &token, json!({"name": "machine", "m2mOnly": true})).await;
    let (_, a) = create_user(&server, &token, "a@example.com", &[]).await;
    let (_, b) = create_user(&server, &token, "b@example.com", &[]).await;
    let (ua, ub) = (a["user"]["id"].as_str().unwrap().to_string(), b["user"]["id"].as_str().unwrap().to_string());
    let m2m = create_app(&server, &token, "M2M").await;
    let web = create_app(&server, &token, "WEB").await;
    let assign =
        |role: &str, body: Value| rest(&server, &token, "POST", format!("/v1/roles/{role}:assign"), Some(body));

    // To a user over REST; again is fine and adds nothing.
    for _ in 0..2 {
        let (status, body) = assign(&editor, json!({"userIds": [ua]})).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(user_roles(&server, &token, &ua).await, ["editor", "user"]);
    let (_, held) = rest(&server, &token, "GET", &format!("/v1/roles?userId={ua}"), None).await;
    let names: Vec<&str> = held["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{held}");

    // All or nothing: an unknown user fails the whole call.
    let ghost = uuid::Uuid::new_v4().to_string();
    let (status, body) = assign(&editor, json!({"userIds": [ub, ghost]})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "USER_NOT_FOUND"));
    assert_eq!(user_roles(&server, &token, &ub).await, ["user"]);
    let (status, body) = assign(&editor, json!({})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ARGUMENT"));
    let (status, body) = assign(&ghost, json!({"userIds": [ua]})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ROLE_NOT_FOUND"));

    // Applications: only M2M ones hold roles; M2M-only roles never go to users.
    let (status, body) = assign(&editor, json!({"applicationIds": [web]})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "APPLICATION_NOT_M2M"));
    let (status, body) = assign(&machine, json!({"userIds": [ub]})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "ROLE_M2M_ONLY"));
    let mut grpc = RoleServiceClient::new(server.channel().await);
    for role in [&editor, &machine] {
        grpc.assign_role(authed(
            pb::AssignRoleRequest { role_id: role.clone(), user_ids: vec![], application_ids: vec![m2m.clone()] },
            &token,
        ))
        .await
        .unwrap();
    }
    let held = grpc
        .list_roles(authed(pb::ListRolesRequest { application_id: m2m.clone(), ..Default::default() }, &token))
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<String> = held.roles.into_iter().map(|r| r.name).collect();
    names.sort();
    assert_eq!(names, ["editor", "machine"]);

    // Who holds editor: the user and the application.
    let assignments = grpc
        .list_role_assignments(authed(
            pb::ListRoleAssignmentsRequest { role_id: editor.clone(), ..Default::default() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .assignments;
    use pb::role_assignment::Assignee;
    assert!(assignments.iter().any(|a| a.assignee == Some(Assignee::UserId(ua.clone()))));
    assert!(
        assignments.iter().any(|a| a.assignee == Some(Assignee::ApplicationId(m2m.clone())) && a.create_time.is_some())
    );
    assert_eq!(assignments.len(), 2);

    // A role users hold cannot become M2M-only; an M2M-only role cannot be given at user creation.
    let (status, body) = rest(
        &server,
        &token,
        "PATCH",
        &format!("/v1/roles/{editor}?updateMask=m2mOnly"),
        Some(json!({"m2mOnly": true})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "ROLE_ASSIGNED_TO_USERS"));
    let (status, body) = create_user(&server, &token, "c@example.com", &["machine"]).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "ROLE_M2M_ONLY"));
    let (status, body) = create_user(&server, &token, "c@example.com", &["nope"]).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "UNKNOWN_ROLE"));
    let (status, body) = rest(
        &server,
        &token,
        "PATCH",
        &format!("/v1/users/{ub}?updateMask=roles"),
        Some(json!({"roles": ["user", "editor"]})),
    )
    .await;
    assert_eq!(status, 200, "custom roles can be set through UpdateUser too: {body}");

    // Unassign: from users and applications; not held is fine.
    let (status, body) = rest(
        &server,
        &token,
        "POST",
        &format!("/v1/roles/{editor}:unassign"),
        Some(json!({"userIds": [ua, ub], "applicationIds": [m2m]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(user_roles(&server, &token, &ua).await, ["user"]);
    assert_eq!(user_roles(&server, &token, &ub).await, ["user"]);
    let (status, _) =
        rest(&server, &token, "POST", &format!("/v1/roles/{editor}:unassign"), Some(json!({"userIds": [ua]}))).await;
    assert_eq!(status, 200);
    let (_, held) = rest(&server, &token, "GET", &format!("/v1/roles?applicationId={m2m}"), None).await;
    assert_eq!(held["roles"][0]["name"], "machine");
    assert_eq!(held["roles"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn default_roles_paging_and_the_last_super_admin() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;

    // New users get every default role.
    let member = create_role(&server, &token, json!({"name": "member", "defaultForNewUsers": true})).await;
    let (status, created) = create_user(&server, &token, "new@example.com", &[]).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(strings(&created["user"]["roles"]), ["member", "user"]);
    let (status, registered) = rest(
        &server,
        "",
        "POST",
        "/v1/auth/register",
        Some(json!({"user": {"email": "reg@example.com", "givenName": "Reg", "familyName": "Istered"},
                    "password": "a long enough password"})),
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    assert_eq!(strings(&registered["user"]["roles"]), ["member", "user"], "registration too");

    // Assignments page through users and applications, each once.
    let mut ids = Vec::new();
    for i in 0..4 {
        let (_, u) = create_user(&server, &token, &format!("p{i}@example.com"), &[]).await;
        ids.push(u["user"]["id"].as_str().unwrap().to_string());
    }
    let app = create_app(&server, &token, "M2M").await;
    let (status, _) =
        rest(&server, &token, "POST", &format!("/v1/roles/{member}:assign"), Some(json!({"applicationIds": [app]})))
            .await;
    assert_eq!(status, 200);
    let (mut seen, mut page_token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (status, page) = rest(
            &server,
            &token,
            "GET",
            &format!("/v1/roles/{member}/assignments?pageSize=2&pageToken={page_token}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for a in page["assignments"].as_array().unwrap() {
            seen.push(a["userId"].as_str().or(a["applicationId"].as_str()).unwrap().to_string());
        }
        page_token = page["nextPageToken"].as_str().unwrap_or("").to_string();
        if page_token.is_empty() {
            break;
        }
    }
    // new@, reg@, p0..p3, and the application.
    let expected = 7;
    assert_eq!(seen.len(), expected, "{seen:?}");
    assert_eq!(pages, expected.div_ceil(2));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), expected, "no holder twice");
    assert!(ids.iter().all(|id| seen.contains(id)) && seen.contains(&app));

    // superAdmin always keeps a holder.
    let (_, listed) = rest(&server, &token, "GET", "/v1/roles?query=superadmin", None).await;
    let super_admin = listed["roles"][0]["id"].as_str().unwrap().to_string();
    let (_, me) = rest(&server, &token, "GET", "/v1/users?role=superAdmin", None).await;
    let admin_id = me["users"][0]["id"].as_str().unwrap().to_string();
    let unassign = |user: &str| {
        rest(&server, &token, "POST", format!("/v1/roles/{super_admin}:unassign"), Some(json!({"userIds": [user]})))
    };
    let (status, body) = unassign(&admin_id).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "LAST_SUPER_ADMIN"));
    let (status, body) = rest(
        &server,
        &token,
        "PATCH",
        format!("/v1/users/{admin_id}?updateMask=roles"),
        Some(json!({"roles": ["user"]})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "LAST_SUPER_ADMIN"), "nor through UpdateUser");
    assert_eq!(user_roles(&server, &token, &admin_id).await, ["superAdmin"], "nothing changed");
    let (status, _) =
        rest(&server, &token, "POST", &format!("/v1/roles/{super_admin}:assign"), Some(json!({"userIds": [ids[0]]})))
            .await;
    assert_eq!(status, 200);
    let (status, body) = unassign(&admin_id).await;
    assert_eq!(status, 200, "another holder remains: {body}");
    assert_eq!(user_roles(&server, &token, &admin_id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_assignments_to_one_user_lose_none() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (_, user) = create_user(&server, &token, "busy@example.com", &[]).await;
    let user_id = user["user"]["id"].as_str().unwrap().to_string();
    let mut roles = Vec::new();
    for i in 0..20 {
        roles.push(create_role(&server, &token, json!({"name": format!("role{i:02}")})).await);
    }
    let channel = server.channel().await;
    let attempts = roles.iter().map(|role| {
        let mut grpc = RoleServiceClient::new(channel.clone());
        let req = authed(
            pb::AssignRoleRequest { role_id: role.clone(), user_ids: vec![user_id.clone()], application_ids: vec![] },
            &token,
        );
        async move { grpc.assign_role(req).await }
    });
    let results = futures::future::join_all(attempts).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let held = user_roles(&server, &token, &user_id).await;
    let mut expected: Vec<String> = (0..20).map(|i| format!("role{i:02}")).collect();
    expected.push("user".into());
    assert_eq!(held, expected, "every concurrent assignment kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_administrators_manage_roles() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (_, user) = create_user(&server, &token, "plain@example.com", &[]).await;
    let user_id = user["user"]["id"].as_str().unwrap().to_string();
    let plain = server.login("plain@example.com", "a long enough password").await;
    let role = create_role(&server, &token, json!({"name": "editor"})).await;
    let (status, body) =
        rest(&server, &plain, "POST", &format!("/v1/roles/{role}:assign"), Some(json!({"userIds": [user_id]}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "PERMISSION_DENIED"), "no self-promotion");
    let (status, body) = rest(&server, "", "POST", "/v1/roles", Some(json!({"name": "x"}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (401, "UNAUTHENTICATED"));
    let mut grpc = RoleServiceClient::new(server.channel().await);
    let err = grpc.create_role(authed(pb::CreateRoleRequest::default(), &plain)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = grpc.list_roles(tonic::Request::new(pb::ListRolesRequest::default())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let (_, body) = rest(&server, &token, "GET", &format!("/v1/users/{user_id}"), None).await;
    assert_eq!(strings(&body["user"]["roles"]), ["user"]);
}
