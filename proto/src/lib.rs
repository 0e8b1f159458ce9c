//! The mgpass API contract compiled for Rust: prost messages, tonic servers and clients for every
//! service under `proto/mgpass`, and the encoded descriptor set that still carries the
//! `google.api.http` and `mgpass.options.v1.auth` method options.

/// The encoded `FileDescriptorSet` of every mgpass proto and its imports, with options and
/// comments. Read it with `prost-reflect`: prost's own descriptor types drop extension options.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgpass_descriptor.bin"));

/// A descriptor pool decoded from [`FILE_DESCRIPTOR_SET`], with extension options resolvable.
pub fn descriptor_pool() -> prost_reflect::DescriptorPool {
    prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the embedded descriptor set is valid")
}

pub mod google {
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

pub mod mgpass {
    pub mod options {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/mgpass.options.v1.rs"));
        }
    }
    pub mod identity {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/mgpass.identity.v1.rs"));
        }
    }
}

pub use mgpass::identity::v1 as identity;
