//! The trust policy document: its rules live once, in `verdict-crds` ([`verdict_crds::notation`],
//! shared with `verdict config check`); verification uses the checked [`TrustPolicyDocument`].

pub use verdict_crds::notation::{
    Action, Level, PolicyError, TrustPolicy as TrustPolicyDocument, TrustPolicyStatement,
    TrustStoreRef, TrustedIdentity, Validation, VerifyTimestamp,
};

use super::error::NotationError;

impl From<PolicyError> for NotationError {
    fn from(e: PolicyError) -> Self {
        NotationError::policy(e.0)
    }
}
