//! Sign in, read my profile, and verify the access token offline.
//!
//! MGPASS_URL=http://127.0.0.1:8080 MGPASS_EMAIL=admin@admin.com MGPASS_PASSWORD=... \
//!   cargo run -p mgpass-sdk --example quickstart

use mgpass_sdk::{
    MgpassClient, TokenVerifier,
    proto::identity::{GetMyProfileRequest, LoginRequest},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("MGPASS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let anonymous = MgpassClient::builder(url.clone()).connect().await?;
    let login = anonymous
        .identity
        .authentication
        .clone()
        .login(LoginRequest { identifier: std::env::var("MGPASS_EMAIL")?, password: std::env::var("MGPASS_PASSWORD")? })
        .await?
        .into_inner();

    let me = MgpassClient::builder(url.clone()).bearer_token(&login.access_token).connect().await?;
    let user = me.identity.profile.clone().get_my_profile(GetMyProfileRequest {}).await?.into_inner().user.unwrap_or_default();
    println!("signed in as {} ({})", user.email, user.id);

    let claims = TokenVerifier::builder(url, "mgpass").build().verify(&login.access_token).await?;
    println!("token verified offline: sub={} scope=\"{}\"", claims.sub, claims.scope);
    Ok(())
}
