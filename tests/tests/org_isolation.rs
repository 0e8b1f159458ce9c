//! Isolation between organizations: org A's owner (who holds every permission in A) calls every
//! organization RPC that takes an id on org B's resources, and on B's resources named under A,
//! and gets PERMISSION_DENIED or NOT_FOUND each time; B's rows are unchanged afterwards (read
//! as a global admin, straight from the database). The list of RPCs is checked against the
//! descriptors, so a new organization RPC cannot be forgotten here.

use std::{collections::BTreeSet, time::Duration};

use mgpass_e2e::{TestServer, psql, rest, rest_reason, smtp::SmtpServer};
use serde_json::{Value, json};

const PW: &str = "a long enough password";

async fn user(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Org", "familyName": "User"}, "password": PW})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (body["user"]["id"].as_str().unwrap().to_string(), server.login(email, PW).await)
}

async fn ok(server: &TestServer, token: &str, method: &str, path: String, body: Option<Value>) -> Value {
    let (status, answer) = rest(server, token, method, &path, body).await;
    assert_eq!(status, 200, "{method} {path}: {answer}");
    answer
}

/// Everything of organization `org`, as stored.
fn snapshot(server: &TestServer, org: &str) -> String {
    [
        format!("SELECT row_to_json(o)::text FROM organizations o WHERE id = '{org}'"),
        format!("SELECT string_agg(row_to_json(m)::text, ',' ORDER BY user_id) FROM org_members m WHERE organization_id = '{org}'"),
        format!("SELECT string_agg(row_to_json(r)::text, ',' ORDER BY id) FROM org_roles r WHERE organization_id = '{org}'"),
        format!("SELECT string_agg(row_to_json(i)::text, ',' ORDER BY id) FROM org_invitations i WHERE organization_id = '{org}'"),
        format!("SELECT string_agg(row_to_json(f)::text, ',' ORDER BY name) FROM org_feature_flags f WHERE organization_id = '{org}'"),
    ]
    .iter()
    .map(|sql| psql(&server.database_url, sql))
    .collect::<Vec<_>>()
    .join("\n")
}

/// The organization RPCs that name no organization or resource id: creating and listing, the
/// caller's own memberships, and the invitation token flows.
const WITHOUT_IDS: [&str; 6] = [
    "OrganizationService.CreateOrganization",
    "OrganizationService.ListOrganizations",
    "OrganizationService.CreateMyOrganization",
    "OrganizationService.ListMyOrganizations",
    "InvitationService.LookupInvitation",
    "InvitationService.AcceptInvitation",
];

#[tokio::test(flavor = "multi_thread")]
async fn nothing_of_one_organization_is_reachable_with_anothers_credentials() {
    let smtp = SmtpServer::start();
    let server = TestServer::start_with(&[
        ("MGPASS_DELIVERY__SMTP_URL", &smtp.url()),
        ("MGPASS_DELIVERY__EMAIL_FROM", "mgpass <no-reply@mgpass.test>"),
    ])
    .await;
    let admin = server.admin_token().await;
    let (_, a_owner) = user(&server, &admin, "a-owner@example.com").await;
    let (a_admin_id, _) = user(&server, &admin, "a-admin@example.com").await;
    let (_, b_owner) = user(&server, &admin, "b-owner@example.com").await;
    let (b_member, _) = user(&server, &admin, "b-member@example.com").await;

    let org_a =
        ok(&server, &a_owner, "POST", "/v1/me/organizations".into(), Some(json!({"name": "A"}))).await["organization"]
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    let org_b =
        ok(&server, &b_owner, "POST", "/v1/me/organizations".into(), Some(json!({"name": "B"}))).await["organization"]
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    ok(
        &server,
        &a_owner,
        "POST",
        format!("/v1/organizations/{org_a}/members"),
        Some(json!({"userId": a_admin_id, "role": "admin"})),
    )
    .await;
    // B's resources of every kind: a member, a custom role, an invitation, a flag.
    ok(
        &server,
        &b_owner,
        "POST",
        format!("/v1/organizations/{org_b}/members"),
        Some(json!({"userId": b_member, "role": "member"})),
    )
    .await;
    let b_role =
        ok(&server, &b_owner, "POST", format!("/v1/organizations/{org_b}/roles"), Some(json!({"name": "editors"})))
            .await["orgRole"]["id"]
            .as_str()
            .unwrap()
            .to_string();
    let b_invitation = ok(
        &server,
        &b_owner,
        "POST",
        format!("/v1/organizations/{org_b}/invitations"),
        Some(json!({"email": "guest@example.com", "role": "viewer"})),
    )
    .await["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &server,
        &admin,
        "PUT",
        format!("/v1/organizations/{org_b}/featureFlags/beta"),
        Some(json!({"boolValue": true})),
    )
    .await;
    let before = snapshot(&server, &org_b);
    assert!(before.contains("editors") && before.contains("guest@example.com") && before.contains("beta"), "{before}");

    let (a, b) = (org_a.as_str(), org_b.as_str());
    let (role, inv, member) = (b_role.as_str(), b_invitation.as_str(), b_member.as_str());
    // (RPC, method, path, body): B's resources under B, then under A.
    let calls: Vec<(&str, &str, String, Option<Value>)> = vec![
        ("OrganizationService.GetOrganization", "GET", format!("/v1/organizations/{b}"), None),
        (
            "OrganizationService.UpdateOrganization",
            "PATCH",
            format!("/v1/organizations/{b}?updateMask=name"),
            Some(json!({"name": "Taken"})),
        ),
        ("OrganizationService.DeleteOrganization", "DELETE", format!("/v1/organizations/{b}"), None),
        ("OrganizationService.ListOrganizationMembers", "GET", format!("/v1/organizations/{b}/members"), None),
        (
            "OrganizationService.AddOrganizationMember",
            "POST",
            format!("/v1/organizations/{b}/members"),
            Some(json!({"userId": a_admin_id, "role": "admin"})),
        ),
        (
            "OrganizationService.UpdateOrganizationMember",
            "PATCH",
            format!("/v1/organizations/{b}/members/{member}?updateMask=role"),
            Some(json!({"role": "admin"})),
        ),
        (
            "OrganizationService.UpdateOrganizationMember",
            "PATCH",
            format!("/v1/organizations/{a}/members/{member}?updateMask=role"),
            Some(json!({"role": "admin"})),
        ),
        (
            "OrganizationService.RemoveOrganizationMember",
            "DELETE",
            format!("/v1/organizations/{b}/members/{member}"),
            None,
        ),
        (
            "OrganizationService.RemoveOrganizationMember",
            "DELETE",
            format!("/v1/organizations/{a}/members/{member}"),
            None,
        ),
        (
            "OrganizationService.TransferOwnership",
            "POST",
            format!("/v1/organizations/{b}:transferOwnership"),
            Some(json!({"newOwnerUserId": member})),
        ),
        (
            "OrganizationService.TransferOwnership",
            "POST",
            format!("/v1/organizations/{a}:transferOwnership"),
            Some(json!({"newOwnerUserId": member})),
        ),
        ("OrganizationService.LeaveOrganization", "POST", format!("/v1/me/organizations/{b}:leave"), Some(json!({}))),
        ("OrganizationService.ListFeatureFlags", "GET", format!("/v1/organizations/{b}/featureFlags"), None),
        (
            "OrganizationService.SetFeatureFlag",
            "PUT",
            format!("/v1/organizations/{b}/featureFlags/beta"),
            Some(json!({"boolValue": false})),
        ),
        ("OrganizationService.DeleteFeatureFlag", "DELETE", format!("/v1/organizations/{b}/featureFlags/beta"), None),
        ("OrganizationService.DeleteFeatureFlag", "DELETE", format!("/v1/organizations/{a}/featureFlags/beta"), None),
        (
            "OrgRoleService.CreateOrgRole",
            "POST",
            format!("/v1/organizations/{b}/roles"),
            Some(json!({"name": "intruders"})),
        ),
        ("OrgRoleService.GetOrgRole", "GET", format!("/v1/organizations/{b}/roles/{role}"), None),
        ("OrgRoleService.GetOrgRole", "GET", format!("/v1/organizations/{a}/roles/{role}"), None),
        ("OrgRoleService.ListOrgRoles", "GET", format!("/v1/organizations/{b}/roles"), None),
        (
            "OrgRoleService.UpdateOrgRole",
            "PATCH",
            format!("/v1/organizations/{b}/roles/{role}?updateMask=description"),
            Some(json!({"description": "x"})),
        ),
        (
            "OrgRoleService.UpdateOrgRole",
            "PATCH",
            format!("/v1/organizations/{a}/roles/{role}?updateMask=description"),
            Some(json!({"description": "x"})),
        ),
        ("OrgRoleService.DeleteOrgRole", "DELETE", format!("/v1/organizations/{b}/roles/{role}"), None),
        ("OrgRoleService.DeleteOrgRole", "DELETE", format!("/v1/organizations/{a}/roles/{role}"), None),
        (
            "InvitationService.CreateInvitation",
            "POST",
            format!("/v1/organizations/{b}/invitations"),
            Some(json!({"email": "x@example.com", "role": "admin"})),
        ),
        ("InvitationService.GetInvitation", "GET", format!("/v1/organizations/{b}/invitations/{inv}"), None),
        ("InvitationService.GetInvitation", "GET", format!("/v1/organizations/{a}/invitations/{inv}"), None),
        ("InvitationService.ListInvitations", "GET", format!("/v1/organizations/{b}/invitations"), None),
        (
            "InvitationService.RevokeInvitation",
            "POST",
            format!("/v1/organizations/{b}/invitations/{inv}:revoke"),
            Some(json!({})),
        ),
        (
            "InvitationService.RevokeInvitation",
            "POST",
            format!("/v1/organizations/{a}/invitations/{inv}:revoke"),
            Some(json!({})),
        ),
    ];

    // Every organization RPC is either called above or takes no id.
    let pool = mgpass_e2e::proto::descriptor_pool();
    let declared: BTreeSet<String> = pool
        .services()
        .filter(|s| s.package_name() == "mgpass.org.v1")
        .flat_map(|s| s.methods().map(|m| format!("{}.{}", s.name(), m.name())).collect::<Vec<_>>())
        .collect();
    let covered: BTreeSet<String> =
        calls.iter().map(|c| c.0.to_string()).chain(WITHOUT_IDS.iter().map(|s| s.to_string())).collect();
    assert_eq!(declared, covered, "every organization RPC taking an id is tried");

    for token in [&a_owner] {
        for (rpc, method, path, body) in &calls {
            let (status, answer) = rest(&server, token, method, path, body.clone()).await;
            let reason = rest_reason(&answer);
            assert!(
                (status == 403 && reason == "PERMISSION_DENIED") || status == 404,
                "{rpc} {method} {path}: {status} {answer}"
            );
        }
    }
    // Also after the membership caches have expired, and with a fresh token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a_owner = server.login("a-owner@example.com", PW).await;
    for (rpc, method, path, body) in &calls {
        let (status, answer) = rest(&server, &a_owner, method, path, body.clone()).await;
        assert!(status == 403 || status == 404, "{rpc} {method} {path}: {status} {answer}");
    }
    assert_eq!(snapshot(&server, &org_b), before, "org B is unchanged");
    // B is intact for its own owner and for global admins.
    ok(&server, &b_owner, "GET", format!("/v1/organizations/{org_b}/invitations/{b_invitation}"), None).await;
    let members = ok(&server, &admin, "GET", format!("/v1/organizations/{org_b}/members"), None).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    // And A's owner reaches their own organization the same way.
    ok(&server, &a_owner, "GET", format!("/v1/organizations/{org_a}/members"), None).await;
}
