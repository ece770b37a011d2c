//! strata-broker
