//! The mgpass API contract compiled for Rust: prost messages, tonic servers and clients for every
//! service under `proto/mgpass`, and the encoded descriptor set that still carries the
//! `google.api.http` and `mgpass.options.v1.auth` method options.

/// The encoded `FileDescriptorSet` of every mgpass proto and its imports, with options and
/// comments. Read it with `prost-reflect`: prost's own descriptor types drop extension options.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgpass_descriptor.bin"));

/// The descriptor pool decoded from [`FILE_DESCRIPTOR_SET`], with extension options resolvable.
/// Decoded once per process: the pool is shared (`Clone` is a reference count), and each of the
/// server's option readers would otherwise hold a private copy of every descriptor.
pub fn descriptor_pool() -> prost_reflect::DescriptorPool {
    static POOL: std::sync::LazyLock<prost_reflect::DescriptorPool> = std::sync::LazyLock::new(|| {
        prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the embedded descriptor set is valid")
    });
    POOL.clone()
}

pub mod google {
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// Generated code of every `mgpass.<domain>.v1` package, in the packages' own nesting (the
/// packages refer to each other through `super::super::...` paths).
pub mod mgpass {
    macro_rules! package {
        ($domain:ident, $file:literal) => {
            pub mod $domain {
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/", $file));
                }
            }
        };
    }
    package!(options, "mgpass.options.v1.rs");
    package!(identity, "mgpass.identity.v1.rs");
    package!(oauth, "mgpass.oauth.v1.rs");
    package!(access, "mgpass.access.v1.rs");
    package!(org, "mgpass.org.v1.rs");
    package!(loyalty, "mgpass.loyalty.v1.rs");
    package!(admin, "mgpass.admin.v1.rs");
}

pub use mgpass::{
    access::v1 as access, admin::v1 as admin, identity::v1 as identity, loyalty::v1 as loyalty, oauth::v1 as oauth,
    org::v1 as org,
};
