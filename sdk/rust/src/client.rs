//! The client builder: one channel, one credential attached to every call.

use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use crate::{Error, clients::Clients};

/// The channel every generated client of [`Clients`] runs on: the credential is added per call.
pub type AuthedChannel = InterceptedService<Channel, Credential>;

/// How calls authenticate. An access token and a personal or organization API key (`mgp_...`)
/// travel as `authorization: Bearer`; a loyalty partner key as `x-api-key`.
#[derive(Clone, Default)]
pub struct Credential {
    header: Option<(&'static str, MetadataValue<Ascii>)>,
}

impl Credential {
    /// No credential (public calls such as `Login`).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn access_token(token: &str) -> Result<Self, Error> {
        Self::with("authorization", &format!("Bearer {token}"))
    }

    pub fn api_key(key: &str) -> Result<Self, Error> {
        Self::with("authorization", &format!("Bearer {key}"))
    }

    pub fn partner_key(key: &str) -> Result<Self, Error> {
        Self::with("x-api-key", key)
    }

    fn with(header: &'static str, value: &str) -> Result<Self, Error> {
        let value = value.parse().map_err(|_| Error::config("the credential is not a valid header value"))?;
        Ok(Self { header: Some((header, value)) })
    }
}

impl Interceptor for Credential {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some((name, value)) = &self.header {
            request.metadata_mut().insert(*name, value.clone());
        }
        Ok(request)
    }
}

/// A connection to mgpass with every service's client. Cheap to clone; [`MgpassClient::with`]
/// shares the connection under another credential.
#[derive(Clone)]
pub struct MgpassClient {
    channel: Channel,
    clients: Clients,
}

impl MgpassClient {
    /// Starts a builder for `endpoint` (`http://host:port` for plaintext HTTP/2, `https://...`
    /// with the `tls` feature).
    pub fn builder(endpoint: impl Into<String>) -> MgpassClientBuilder {
        MgpassClientBuilder { endpoint: endpoint.into(), credential: Ok(Credential::none()) }
    }

    /// The same connection with another credential.
    pub fn with(&self, credential: Credential) -> Self {
        Self::from_channel(self.channel.clone(), credential)
    }

    /// Wraps a channel you built yourself.
    pub fn from_channel(channel: Channel, credential: Credential) -> Self {
        let clients = Clients::new(InterceptedService::new(channel.clone(), credential));
        Self { channel, clients }
    }

    /// Every service's client, grouped by domain.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }
}

impl std::ops::Deref for MgpassClient {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.clients
    }
}

/// Builds an [`MgpassClient`].
pub struct MgpassClientBuilder {
    endpoint: String,
    credential: Result<Credential, Error>,
}

impl MgpassClientBuilder {
    pub fn bearer_token(mut self, token: &str) -> Self {
        self.credential = Credential::access_token(token);
        self
    }

    pub fn api_key(mut self, key: &str) -> Self {
        self.credential = Credential::api_key(key);
        self
    }

    /// A loyalty partner's key, sent as `X-API-Key`.
    pub fn partner_key(mut self, key: &str) -> Self {
        self.credential = Credential::partner_key(key);
        self
    }

    /// Connects now (a refused connection is an error here rather than on the first call).
    pub async fn connect(self) -> Result<MgpassClient, Error> {
        let (endpoint, credential) = self.parts()?;
        let channel = endpoint.connect().await.map_err(|e| Error::config(format!("cannot connect: {e}")))?;
        Ok(MgpassClient::from_channel(channel, credential))
    }

    /// Connects on the first call.
    pub fn connect_lazy(self) -> Result<MgpassClient, Error> {
        let (endpoint, credential) = self.parts()?;
        Ok(MgpassClient::from_channel(endpoint.connect_lazy(), credential))
    }

    fn parts(self) -> Result<(Endpoint, Credential), Error> {
        let credential = self.credential?;
        let https = self.endpoint.starts_with("https://");
        let endpoint = Endpoint::from_shared(self.endpoint).map_err(|e| Error::config(format!("bad endpoint: {e}")))?;
        if !https {
            return Ok((endpoint, credential));
        }
        #[cfg(feature = "tls")]
        {
            let tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
            let endpoint = endpoint.tls_config(tls).map_err(|e| Error::config(format!("TLS: {e}")))?;
            Ok((endpoint, credential))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = endpoint;
            Err(Error::config("https:// endpoints need the `tls` feature of mgpass-sdk"))
        }
    }
}
